#!/usr/bin/python3
"""test_accounts_cli: `petrel domain|user|alias` as an administrator uses them.

Runs the real binary (env PETREL_BIN, default build/petrel) against a temporary config and
data directory, and asserts on what the user sees: stdout lines, one "petrel: ..." line on
stderr, exit codes (0 ok, 1 refused, nonzero for usage errors), and that passwords are never
taken from argv. Standard library only: /usr/bin/python3 -m unittest test_accounts_cli
"""
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import unittest

PETREL = os.environ.get("PETREL_BIN", "build/petrel")


class AccountsCli(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="petrel-accounts-")
        # A data directory that does not exist yet: the CLI creates it (mkdir -p, 0750).
        self.data = os.path.join(self.tmp, "data", "petrel")
        self.config = os.path.join(self.tmp, "petrel.toml")
        with open(self.config, "w") as f:
            f.write(
                '[server]\nhostname = "mx.example.test"\ndata_dir = "%s"\n\n'
                '[[listener]]\nkind = "smtp"\naddress = "127.0.0.1:2525"\n' % self.data
            )

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def petrel(self, *args, stdin="", config=True):
        argv = [PETREL, *args]
        if config:
            argv += ["-c", self.config]
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)

    def ok(self, *args, stdin=""):
        r = self.petrel(*args, stdin=stdin)
        self.assertEqual(r.returncode, 0, "%s: %s" % (args, r.stderr))
        return r.stdout.splitlines()

    def refused(self, *args, stdin="", why=""):
        r = self.petrel(*args, stdin=stdin)
        self.assertEqual(r.returncode, 1, "%s should fail: out=%r err=%r" % (args, r.stdout, r.stderr))
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("petrel: "), r.stderr)
        self.assertIn(why, lines[0])
        return lines[0]

    def test_domain_add_list_del(self):
        self.ok("domain", "add", "Example.TEST")
        self.ok("domain", "add", "other.test")
        self.assertEqual(self.ok("domain", "list"), ["example.test", "other.test"])
        self.assertTrue(os.path.isdir(self.data))
        self.assertEqual(stat.S_IMODE(os.stat(self.data).st_mode) & ~0o750, 0)
        self.refused("domain", "add", "example.test", why="already exists")
        self.refused("domain", "add", "[192.0.2.1]", why="invalid domain")
        self.ok("domain", "del", "other.test")
        self.assertEqual(self.ok("domain", "list"), ["example.test"])
        self.refused("domain", "del", "other.test", why="no such domain")

    def test_domain_in_use_needs_force(self):
        self.ok("domain", "add", "example.test")
        self.ok("user", "add", "alice@example.test", stdin="pw\n")
        self.refused("domain", "del", "example.test", why="--force")
        self.ok("domain", "del", "--force", "example.test")
        self.assertEqual(self.ok("user", "list"), [])

    def test_user_add_list_del(self):
        self.ok("domain", "add", "example.test")
        self.ok("user", "add", "Alice@Example.test", stdin="correct horse\n")
        self.ok("user", "add", "bob@example.test", stdin="battery staple\n")
        self.assertEqual(self.ok("user", "list"), ["alice@example.test", "bob@example.test"])
        self.assertEqual(self.ok("user", "list", "example.test"), ["alice@example.test", "bob@example.test"])
        self.refused("user", "add", "alice@example.test", stdin="pw\n", why="already exists")
        self.ok("user", "del", "bob@example.test")
        self.assertEqual(self.ok("user", "list"), ["alice@example.test"])
        self.refused("user", "del", "bob@example.test", why="no such account")

    def test_password_is_hashed_and_changeable(self):
        self.ok("domain", "add", "example.test")
        self.ok("user", "add", "alice@example.test", stdin="first-secret\n")
        self.assertTrue(self.stored_hash("alice@example.test").startswith("$argon2id$v=19$m=32768,t=3,p=1$"))
        before = self.stored_hash("alice@example.test")
        self.ok("user", "passwd", "alice@example.test", stdin="second-secret\n")
        after = self.stored_hash("alice@example.test")
        self.assertNotEqual(before, after)
        with open(os.path.join(self.data, "petrel.db"), "rb") as f:
            self.assertNotIn(b"first-secret", f.read())
        self.refused("user", "passwd", "nobody@example.test", stdin="x\n", why="no such account")
        self.refused("user", "add", "carol@example.test", stdin="", why="empty password")

    def test_password_never_from_argv(self):
        self.ok("domain", "add", "example.test")
        r = self.petrel("user", "add", "alice@example.test", "s3cret", stdin="pw\n")
        self.assertNotEqual(r.returncode, 0)
        r = self.petrel("user", "add", "alice@example.test", "--password", "s3cret", stdin="pw\n")
        self.assertNotEqual(r.returncode, 0)
        r = self.petrel("user", "add", "alice@example.test", "-p", "s3cret", stdin="pw\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(self.ok("user", "list"), [])

    def test_bad_addresses_are_refused(self):
        self.ok("domain", "add", "example.test")
        for bad in ["u%x@example.test", "u!x@example.test", '"a b"@example.test', '"a/b"@example.test',
                    '".."@example.test', "u@[192.0.2.1]", "not-an-address", "u@@example.test"]:
            with self.subTest(address=bad):
                self.refused("user", "add", bad, stdin="pw\n")
                self.refused("alias", "add", bad, "alice@example.test")
        self.assertEqual(self.ok("user", "list"), [])
        self.assertEqual(self.ok("alias", "list"), [])

    def test_missing_domain(self):
        self.refused("user", "add", "alice@missing.test", stdin="pw\n", why="no such domain")
        self.refused("alias", "add", "info@missing.test", "x@remote.test", why="no such domain")
        self.refused("domain", "catch-all", "missing.test", "x@remote.test", why="no such domain")

    def test_alias_add_list_del(self):
        self.ok("domain", "add", "example.test")
        self.ok("user", "add", "alice@example.test", stdin="pw\n")
        self.ok("alias", "add", "info@example.test", "alice@example.test", "bob@remote.test")
        self.ok("alias", "add", "sales@example.test", "alice@example.test")
        self.assertEqual(self.ok("alias", "list"), [
            "info@example.test alice@example.test",
            "info@example.test bob@remote.test",
            "sales@example.test alice@example.test",
        ])
        self.refused("alias", "add", "alice@example.test", "x@remote.test", why="is an account")
        self.refused("alias", "add", "info@example.test", "bob@remote.test", why="already exists")
        self.ok("alias", "del", "info@example.test", "bob@remote.test")
        self.ok("alias", "del", "sales@example.test")
        self.assertEqual(self.ok("alias", "list"), ["info@example.test alice@example.test"])
        self.refused("alias", "del", "sales@example.test", why="no such alias")

    def test_catch_all(self):
        self.ok("domain", "add", "example.test")
        self.ok("domain", "catch-all", "example.test", "admin@example.test")
        self.assertEqual(self.ok("domain", "list"), ["example.test catch-all=admin@example.test"])
        self.ok("domain", "catch-all", "example.test")
        self.assertEqual(self.ok("domain", "list"), ["example.test"])

    def test_usage_errors(self):
        r = self.petrel("user", "add", "--bogus-flag", "a@example.test", stdin="pw\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertNotEqual(r.returncode, 1)  # usage, not "the operation failed"
        r = self.petrel("user", "add", stdin="pw\n")  # missing ADDRESS
        self.assertNotEqual(r.returncode, 0)
        r = self.petrel("domain")  # a subcommand is required
        self.assertNotEqual(r.returncode, 0)
        for cmd in (["domain", "add"], ["domain", "catch-all"], ["user", "add"], ["user", "passwd"],
                    ["alias", "add"], ["alias", "del"], ["alias", "list"]):
            with self.subTest(cmd=cmd):
                r = self.petrel(*cmd, "--help", config=False)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("-c", r.stdout)

    def test_bad_config_exits_2(self):
        with open(self.config, "a") as f:
            f.write("\n[smtp]\nno_such_key = 1\n")
        r = self.petrel("domain", "list")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("no_such_key", r.stderr)

    def stored_hash(self, address):
        db = sqlite3.connect(os.path.join(self.data, "petrel.db"))
        try:
            row = db.execute("SELECT password_hash FROM accounts WHERE address = ?", (address,)).fetchone()
        finally:
            db.close()
        self.assertIsNotNone(row, address)
        return row[0]


if __name__ == "__main__":
    unittest.main()
