"""Shutdown while the disk is slow (issue 11): SIGTERM arrives while a message's commit is still
syncing. The server must stop cleanly (no use of freed memory: the commit's completion is
posted to an event loop that must still exist), and the message, once synced, must not be lost.
The sync is slowed with strace's fault injection; freed memory is filled with garbage
(MALLOC_PERTURB_) so that a use after free crashes instead of passing unnoticed."""
import os
import shutil
import signal
import time
import unittest

from petrel import DOMAIN, Dialog, Petrel, message, wait_for


def traced_child(pid):
    """The pid of the first child of `pid` (the server under strace)."""
    def find():
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids = f.read().split()
            if kids:
                return int(kids[0])
        return None
    return wait_for(find, 10)


@unittest.skipUnless(shutil.which("strace"), "strace not installed")
class Shutdown(unittest.TestCase):
    def test_sigterm_while_a_commit_is_syncing(self):
        for attempt in range(3):
            p = Petrel()
            p.wrapper = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=fdatasync", "-e",
                         "inject=fdatasync:delay_exit=1500000"]
            p.env = dict(os.environ, MALLOC_PERTURB_="165")
            with p:
                server = traced_child(p.proc.pid)
                self.assertIsNotNone(server)
                subject = f"syncing at shutdown {attempt}"
                c = Dialog(p.port())
                try:
                    c.expect(220)
                    c.cmd("EHLO client.example", 250)
                    c.cmd("MAIL FROM:<sender@remote.example>", 250)
                    c.cmd(f"RCPT TO:<alice@{DOMAIN}>", 250)
                    c.cmd("DATA", 354)
                    c.send(message(subject).encode() + b".\r\n")
                    # The commit is now in its fdatasync, slowed to 1.5 s.
                    time.sleep(0.4)
                    os.kill(server, signal.SIGTERM)
                    p.proc.wait(30)
                finally:
                    c.close()
                self.assertEqual(p.proc.returncode, 0, f"the server did not stop cleanly:\n{p.log()[-3000:]}")
                self.assertIn("server.stop", p.log())
                # The commit completed during shutdown: the message is on disk and is delivered
                # once the server runs again.
                p.wrapper, p.env = [], None
                p.start()
                pattern = os.path.join(p.data_dir, "mail", DOMAIN, "alice", "new")

                def delivered():
                    for name in os.listdir(pattern) if os.path.isdir(pattern) else []:
                        with open(os.path.join(pattern, name), "rb") as f:
                            if f"Subject: {subject}".encode() in f.read():
                                return True
                    return False
                self.assertTrue(wait_for(delivered, 20), p.log()[-3000:])


if __name__ == "__main__":
    unittest.main()
