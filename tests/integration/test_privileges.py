"""Root, the run user and the data directory (issue 11): `make run` and `petrel serve` work from
a clone in a mode-0700 directory (under /root, or `mktemp -d`), and nothing the server does as
root can be steered by links that the run user controls. These tests need root (the server
drops to the `petrel` user); they are skipped otherwise."""
import glob
import os
import pwd
import re
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest

from petrel import DOMAIN, PETREL_BIN, Petrel, free_port, message, read_text, send_mail, wait_for

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")
IS_ROOT = os.geteuid() == 0


def run_user():
    try:
        return pwd.getpwnam("petrel")
    except KeyError:
        return None


needs_root = unittest.skipUnless(IS_ROOT and run_user(), "needs root and the petrel user (scripts/install-deps)")


def owners(top):
    """{path: owner uid} for everything under `top` (not following links)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            out[path] = os.lstat(path).st_uid
    return out


@needs_root
class PrivateDirectory(unittest.TestCase):
    def test_demo_setup_then_serve_from_a_0700_directory(self):
        """What `make run` does (scripts/demo-setup, then petrel serve), in a fresh 0700
        directory: the demo account gets mail, and the CLI works while the server runs."""
        top = tempfile.mkdtemp(prefix="petrel-private-")
        self.assertEqual(os.stat(top).st_mode & 0o777, 0o700)
        var = os.path.join(top, "var")
        proc = None
        try:
            r = subprocess.run([os.path.join(ROOT, "scripts/demo-setup"), PETREL_BIN, var], capture_output=True,
                               text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
            self.assertEqual(os.stat(top).st_mode & 0o777, 0o700, "demo-setup must not open the user's folder")
            config = os.path.join(var, "petrel.toml")
            ports = {2525: free_port(), 2587: free_port(), 2465: free_port()}
            with open(config) as f:
                text = f.read()
            for old, new in ports.items():
                text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
            with open(config, "w") as f:
                f.write(text + '\n[dns]\nservers = ["127.0.0.1:%d"]\ntimeout = "2s"\n' % free_port())
            log_path = os.path.join(top, "serve.log")
            with open(log_path, "ab") as log:
                proc = subprocess.Popen([PETREL_BIN, "serve", "-c", config], stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
            self.assertTrue(wait_for(lambda: "server.ready" in read_text(log_path) or proc.poll() is not None, 20))
            self.assertIsNone(proc.poll(), read_text(log_path))
            with smtplib.SMTP("127.0.0.1", ports[2525], timeout=10) as s:
                s.sendmail("someone@remote.example", ["demo@example.test"],
                           "Subject: from a private clone\r\n\r\nhello\r\n")
            new = os.path.join(var, "data/mail/example.test/demo/new")
            self.assertTrue(wait_for(lambda: os.path.isdir(new) and os.listdir(new), 20), read_text(log_path))
            # The CLI as root, while the server runs as petrel.
            r = subprocess.run([PETREL_BIN, "user", "list", "-c", config], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("demo@example.test", r.stdout)
            r = subprocess.run([PETREL_BIN, "queue", "flush", "-c", config], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            # Everything in the data directory is the run user's: nothing was left to root.
            uid = run_user().pw_uid
            stray = {p: o for p, o in owners(os.path.join(var, "data")).items() if o != uid}
            self.assertEqual(stray, {})
        finally:
            if proc and proc.poll() is None:
                proc.terminate()
                proc.wait(10)
            shutil.rmtree(top, ignore_errors=True)

    def test_cli_and_server_with_the_data_directory_under_a_0700_directory(self):
        with Petrel(private=True) as p:
            self.assertEqual(os.stat(p.tmp).st_mode & 0o777, 0o700)
            qid = send_mail(p, [f"alice@{DOMAIN}"], message("private").encode())
            self.assertIn(b"Subject: private", p.delivered_message(qid))
            out = p.cli("queue", "list", "--all").stdout
            self.assertIn(qid, out)
            p.cli("user", "add", f"carol@{DOMAIN}", input="carol-password\n")
            self.assertIn(f"carol@{DOMAIN}", p.cli("user", "list").stdout)


@needs_root
class LinksPlantedByTheRunUser(unittest.TestCase):
    def setUp(self):
        self.outside = tempfile.mkdtemp(prefix="petrel-outside-")
        self.target = os.path.join(self.outside, "precious")
        with open(self.target, "w") as f:
            f.write("root's own\n")
        os.chmod(self.target, 0o600)

    def tearDown(self):
        shutil.rmtree(self.outside, ignore_errors=True)

    def assert_target_untouched(self):
        st = os.lstat(self.target)
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o600))
        with open(self.target) as f:
            self.assertEqual(f.read(), "root's own\n")

    def test_a_log_file_that_is_a_link_is_refused_not_followed(self):
        p = Petrel()
        try:
            log_file = os.path.join(p.data_dir, "petrel.log")  # a directory the run user owns
            with open(p.config_path, "a") as f:
                f.write("")
            text = read_text(p.config_path).replace('[log]\nlevel = "debug"',
                                                    f'[log]\nlevel = "debug"\nfile = "{log_file}"')
            with open(p.config_path, "w") as f:
                f.write(text)
            p.setup_accounts()
            os.symlink(self.target, log_file)
            with self.assertRaises(RuntimeError) as failed:
                p.start(timeout=10)
            self.assertIn("symbolic link", str(failed.exception))
            self.assert_target_untouched()
        finally:
            p.stop()
            shutil.rmtree(p.tmp, ignore_errors=True)

    def test_the_self_signed_key_is_written_by_the_run_user_never_through_a_link(self):
        p = Petrel()
        try:
            p.setup_accounts()  # makes the data directory, owned by the run user
            tls = os.path.join(p.data_dir, "tls")
            os.mkdir(tls, 0o700)
            user = run_user()
            os.chown(tls, user.pw_uid, user.pw_gid)
            os.symlink(self.target, os.path.join(tls, "key.pem.tmp"))
            os.lchown(os.path.join(tls, "key.pem.tmp"), user.pw_uid, user.pw_gid)
            p.start()
            self.assert_target_untouched()
            for name in ("key.pem", "cert.pem"):
                st = os.lstat(os.path.join(tls, name))
                self.assertEqual(st.st_uid, user.pw_uid, name)
            self.assertEqual(os.stat(os.path.join(tls, "key.pem")).st_mode & 0o777, 0o600)
        finally:
            p.stop()
            shutil.rmtree(p.tmp, ignore_errors=True)

    def test_root_owned_files_are_handed_over_but_links_are_not_followed(self):
        """A tree left by root (an older version, a command run as root) is given to the run
        user at start; a link in it to a file outside is left alone."""
        p = Petrel()
        try:
            p.setup_accounts()
            os.chown(p.data_dir, 0, 0)
            stray = os.path.join(p.data_dir, "left-by-root")
            os.mkdir(stray)
            with open(os.path.join(stray, "file"), "w") as f:
                f.write("x")
            os.symlink(self.target, os.path.join(stray, "link"))
            p.start()
            uid = run_user().pw_uid
            self.assertEqual(os.stat(p.data_dir).st_uid, uid)
            self.assertEqual(os.stat(stray).st_uid, uid)
            self.assertEqual(os.stat(os.path.join(stray, "file")).st_uid, uid)
            self.assert_target_untouched()
        finally:
            p.stop()
            shutil.rmtree(p.tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
