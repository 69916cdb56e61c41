#!/usr/bin/python3
"""test_smtp_basic: one plain ESMTP dialog end to end, and the privilege drop."""
import os
import unittest

from petrel import Dialog, Petrel, message


class Basic(unittest.TestCase):
    def test_dialog_queues_message(self):
        with Petrel() as p:
            c = Dialog(p.port())
            banner = c.expect(220)
            self.assertIn("mx.example.test ESMTP", banner)
            ehlo = c.cmd("EHLO client.example", 250)
            for ext in ("PIPELINING", "SIZE 52428800", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING",
                        "DSN", "STARTTLS"):
                self.assertIn(ext, ehlo)
            c.cmd("MAIL FROM:<sender@remote.example>", 250)
            c.cmd("RCPT TO:<alice@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(message(subject="basic") + ".\r\n")
            reply = c.expect(250)
            qid = reply.split()[-1]
            c.cmd("QUIT", 221)
            self.assertEqual(p.queue_ids(), [qid])
            # One log line per event: the accept with its queue id, and the session's replies by class
            # (220 banner, EHLO, MAIL, RCPT, end of data, 221 → six 2xx; 354 → one 3xx).
            self.assertTrue(p.wait_log(f"smtp.queued session="), p.log())
            self.assertIn(f"id={qid}", p.log())
            self.assertTrue(p.wait_log("replies=2xx:6,3xx:1,4xx:0,5xx:0"), p.log())
            body = p.queue_body(qid)
            self.assertTrue(body.startswith(b"Received: from client.example ([127.0.0.1])\r\n"), body[:200])
            self.assertIn(b"id " + qid.encode(), body)
            self.assertTrue(body.endswith(message(subject="basic").encode().split(b"\r\n\r\n", 1)[1]))

    @unittest.skipUnless(os.geteuid() == 0, "needs root to test the privilege drop")
    def test_never_handles_connections_as_root(self):
        with Petrel() as p:
            with open(f"/proc/{p.proc.pid}/status") as f:
                uids = [l for l in f if l.startswith("Uid:")][0].split()[1:]
            self.assertTrue(all(u != "0" for u in uids), uids)


if __name__ == "__main__":
    unittest.main()
