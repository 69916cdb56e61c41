#!/usr/bin/python3
"""test_smtp_protocol: the SMTP receiver's command grammar and state machine (RFC 5321, RFC 2034,
RFC 2920), seen from a client on loopback: reply codes, enhanced codes, and what gets stored."""
import re
import unittest

from petrel import codes, Dialog, message, Petrel, split_received

# RFC 2034: "250 2.1.0 Ok" or "250-2.0.0 ..." on every line of the reply.
ENHANCED = re.compile(r"^[2-5]\d\d[ -][245]\.\d{1,3}\.\d{1,3} ")


class SmtpTest(unittest.TestCase):
    def dial(self, p):
        """A connection that has heard the banner; closed when the test ends."""
        c = Dialog(p.port())
        self.addCleanup(c.close)
        c.expect(220)
        return c

    def greeted(self, p):
        c = self.dial(p)
        c.cmd("EHLO client.example", 250)
        return c


class CommandOrder(SmtpTest):
    def test_mail_before_ehlo_is_503(self):
        with Petrel() as p:
            c = self.dial(p)
            self.assertEqual(codes(c.cmd("MAIL FROM:<a@remote.example>", 503)), ("503", "5.5.1"))
            c.cmd("EHLO client.example", 250)
            c.cmd("MAIL FROM:<a@remote.example>", 250)

    def test_rcpt_before_mail_is_503(self):
        with Petrel() as p:
            c = self.greeted(p)
            self.assertEqual(codes(c.cmd("RCPT TO:<alice@example.test>", 503)), ("503", "5.5.1"))

    def test_data_before_rcpt_is_503(self):
        with Petrel() as p:
            c = self.greeted(p)
            self.assertEqual(codes(c.cmd("DATA", 503)), ("503", "5.5.1"))
            c.cmd("MAIL FROM:<a@remote.example>", 250)
            self.assertEqual(codes(c.cmd("DATA", 503)), ("503", "5.5.1"))
            # The session is still usable: the transaction was not disturbed.
            c.cmd("RCPT TO:<alice@example.test>", 250)
            c.cmd("DATA", 354)

    def test_nested_mail_is_503(self):
        with Petrel() as p:
            c = self.greeted(p)
            c.cmd("MAIL FROM:<a@remote.example>", 250)
            reply = c.cmd("MAIL FROM:<b@remote.example>", 503)
            self.assertEqual(codes(reply), ("503", "5.5.1"))
            self.assertIn("Nested", reply)

    def test_helo_offers_no_extensions(self):
        with Petrel() as p:
            c = self.dial(p)
            helo = c.cmd("HELO client.example", 250)
            self.assertEqual(len(helo.split("\n")), 1, helo)
            self.assertEqual(codes(c.cmd("MAIL FROM:<a@remote.example> SIZE=100", 555)), ("555", "5.5.4"))
            c.cmd("MAIL FROM:<a@remote.example>", 250)

    def test_rset_clears_transaction(self):
        with Petrel() as p:
            c = self.greeted(p)
            c.cmd("MAIL FROM:<a@remote.example>", 250)
            c.cmd("RCPT TO:<alice@example.test>", 250)
            self.assertEqual(codes(c.cmd("RSET", 250)), ("250", "2.0.0"))
            c.cmd("DATA", 503)
            c.cmd("RCPT TO:<alice@example.test>", 503)
            c.cmd("MAIL FROM:<b@remote.example>", 250)  # not nested: the old one is gone

    def test_ehlo_mid_transaction_resets_it(self):
        with Petrel() as p:
            c = self.greeted(p)
            c.cmd("MAIL FROM:<a@remote.example>", 250)
            c.cmd("RCPT TO:<alice@example.test>", 250)
            c.cmd("EHLO again.example", 250)
            c.cmd("DATA", 503)
            c.cmd("MAIL FROM:<b@remote.example>", 250)


class SimpleCommands(SmtpTest):
    def test_noop(self):
        with Petrel() as p:
            c = self.greeted(p)
            self.assertEqual(codes(c.cmd("NOOP", 250)), ("250", "2.0.0"))
            c.cmd("NOOP ignored argument", 250)
            c.cmd("MAIL FROM:<a@remote.example>", 250)
            c.cmd("NOOP", 250)
            c.cmd("RCPT TO:<alice@example.test>", 250)  # NOOP did not touch the transaction

    def test_help(self):
        with Petrel() as p:
            c = self.greeted(p)
            reply = c.cmd("HELP", 214)
            self.assertEqual(codes(reply), ("214", "2.0.0"))
            self.assertIn("EHLO", reply)

    def test_vrfy_does_not_tell_users_apart(self):
        with Petrel() as p:
            c = self.greeted(p)
            known = c.cmd("VRFY alice@example.test", 252)
            unknown = c.cmd("VRFY nobody@example.test", 252)
            bare = c.cmd("VRFY alice", 252)
            self.assertEqual(known, unknown)
            self.assertEqual(known, bare)
            self.assertEqual(codes(known), ("252", "2.5.0"))

    def test_expn_not_available(self):
        with Petrel() as p:
            c = self.greeted(p)
            self.assertEqual(codes(c.cmd("EXPN staff", 502)), ("502", "5.5.1"))

    def test_unknown_command(self):
        with Petrel() as p:
            c = self.greeted(p)
            self.assertEqual(codes(c.cmd("FROB nicate", 500)), ("500", "5.5.2"))
            c.cmd("NOOP", 250)

    def test_quit(self):
        with Petrel() as p:
            c = self.greeted(p)
            self.assertEqual(codes(c.cmd("QUIT", 221)), ("221", "2.0.0"))
            self.assertTrue(c.closed())


class Addresses(SmtpTest):
    def test_malformed_sender(self):
        with Petrel() as p:
            c = self.greeted(p)
            for bad in ("MAIL FROM:<no spaces@remote.example>", "MAIL FROM:<a@@remote.example>",
                        "MAIL FROM:<a@remote.example"):
                self.assertEqual(codes(c.cmd(bad, 501)), ("501", "5.1.7"), bad)
            c.cmd("MAIL FROM:<>", 250)  # the null reverse-path is fine

    def test_malformed_recipient(self):
        with Petrel() as p:
            c = self.greeted(p)
            c.cmd("MAIL FROM:<a@remote.example>", 250)
            for bad in ("RCPT TO:<>", "RCPT TO:<alice@@example.test>", "RCPT TO:<alice@example.test"):
                self.assertEqual(codes(c.cmd(bad, 501)), ("501", "5.1.3"), bad)
            c.cmd("RCPT TO:<alice@example.test>", 250)

    def test_missing_from_colon(self):
        with Petrel() as p:
            c = self.greeted(p)
            self.assertEqual(codes(c.cmd("MAIL <a@remote.example>", 501)), ("501", "5.5.2"))

    def test_unknown_mail_parameter(self):
        with Petrel() as p:
            c = self.greeted(p)
            self.assertEqual(codes(c.cmd("MAIL FROM:<a@remote.example> FOO=bar", 555)), ("555", "5.5.4"))
            c.cmd("MAIL FROM:<a@remote.example> SIZE=100", 250)
            self.assertEqual(codes(c.cmd("RCPT TO:<alice@example.test> FOO", 555)), ("555", "5.5.4"))

    def test_unknown_recipient_550(self):
        with Petrel() as p:
            c = self.greeted(p)
            c.cmd("MAIL FROM:<a@remote.example>", 250)
            reply = c.cmd("RCPT TO:<nobody@example.test>", 550)
            self.assertEqual(codes(reply), ("550", "5.1.1"))
            self.assertIn("nobody@example.test", reply)

    def test_postmaster_accepted(self):
        with Petrel() as p:
            c = self.greeted(p)
            c.cmd("MAIL FROM:<a@remote.example>", 250)
            self.assertEqual(codes(c.cmd("RCPT TO:<Postmaster>", 250)), ("250", "2.1.5"))
            c.cmd("RCPT TO:<postmaster>", 250)
            c.cmd("DATA", 354)
            c.send(message(subject="to postmaster") + ".\r\n")
            qid = c.expect(250).split()[-1]
            self.assertIn(qid, p.queue_ids())

    def test_policy_decisions_are_logged_with_the_session(self):
        # policy/README.md "The log": each refusal names the session, the stage and the check,
        # which is what `petrel explain` will read.
        with Petrel() as p:
            c = self.greeted(p)
            c.cmd("MAIL FROM:<a@remote.example>", 250)
            c.cmd("RCPT TO:<nobody@example.test>", 550)
            c.cmd("RCPT TO:<someone@elsewhere.example>", 554)
            c.cmd("QUIT", 221)
            self.assertTrue(p.wait_log("check=relay verdict=reject code=554"), p.log())
            log = p.log()
            m = re.search(r"policy\.decision session=(s[0-9a-f]+) client=127\.0\.0\.1 stage=rcpt check=recipient "
                          r"verdict=reject code=550 status=5\.1\.1 reason=", log)
            self.assertIsNotNone(m, log)
            self.assertRegex(log, rf"policy\.decision session={m.group(1)} client=127\.0\.0\.1 stage=rcpt check=relay "
                                  r"verdict=reject code=554 status=5\.7\.1 reason=")


class EnhancedCodes(SmtpTest):
    def test_every_reply_has_an_enhanced_code(self):
        # Banner, EHLO/HELO and 354 have none (RFC 2034 4 leaves them out); everything else does.
        script = [
            "NOOP", "MAIL FROM:<a@remote.example>", "HELP", "VRFY x", "EXPN x", "FROB", "RCPT TO:<x@example.test>",
            "EHLO client.example", "MAIL FROM:<a@remote.example> BAD=1", "MAIL FROM:<bad", "DATA",
            "MAIL FROM:<a@remote.example> SIZE=99999999999", "MAIL FROM:<a@remote.example>",
            "MAIL FROM:<b@remote.example>", "RCPT TO:<nobody@example.test>", "RCPT TO:<x@elsewhere.example>",
            "RCPT TO:<bad", "RCPT TO:<alice@example.test>", "STARTTLS", "RSET", "RSET x", "DATA x",
            "VRFY", "AUTH PLAIN", "STARTTLS x", "QUIT",
        ]
        with Petrel(smtp_toml="max_errors = 100\n") as p:
            c = self.dial(p)
            seen = set()
            for line in script:
                c.send(line + "\r\n")
                code, lines = c.reply()
                seen.add(code)
                if line.startswith("EHLO"):
                    continue
                for l in lines:
                    self.assertRegex(l, ENHANCED, f"reply to {line!r}")
            self.assertTrue({250, 214, 252, 500, 501, 502, 503, 550, 552, 554, 555, 221} <= seen, seen)


class Transfer(SmtpTest):
    def test_pipelined_dialog(self):
        with Petrel() as p:
            c = self.dial(p)
            c.send("EHLO client.example\r\nMAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\n"
                   "RCPT TO:<bob@example.test>\r\nDATA\r\n")
            self.assertEqual(c.reply()[0], 250)
            self.assertEqual(c.reply()[0], 250)
            self.assertEqual(c.reply()[0], 250)
            self.assertEqual(c.reply()[0], 250)
            self.assertEqual(c.reply()[0], 354)
            msg = message(subject="pipelined")
            c.send(msg + ".\r\nQUIT\r\n")
            code, lines = c.reply()
            self.assertEqual(code, 250, lines)
            qid = lines[0].split()[-1]
            self.assertEqual(c.reply()[0], 221)
            self.assertTrue(c.closed())
            self.assertEqual(p.queue_ids(), [qid])
            _, rest = split_received(p.queue_body(qid))
            self.assertEqual(rest, msg.encode())

    def test_several_messages_in_one_session(self):
        with Petrel() as p:
            c = self.greeted(p)
            sent = {}
            for i in range(3):
                c.cmd("MAIL FROM:<a@remote.example>", 250)
                c.cmd("RCPT TO:<alice@example.test>", 250)
                c.cmd("DATA", 354)
                msg = message(subject=f"number {i}")
                c.send(msg + ".\r\n")
                sent[c.expect(250).split()[-1]] = msg
            c.cmd("QUIT", 221)
            self.assertEqual(sorted(p.queue_ids()), sorted(sent))
            for qid, msg in sent.items():
                self.assertEqual(split_received(p.queue_body(qid))[1], msg.encode())

    def test_dot_stuffed_lines_stored_unstuffed(self):
        original = (b"From: <a@remote.example>\r\nSubject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\t.\r\n"
                    b"middle . dot\r\n. \r\n...\r\nlast\r\n")
        # RFC 5321 4.5.2: the client doubles every leading dot.
        stuffed = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in original.split(b"\r\n"))
        with Petrel() as p:
            c = self.greeted(p)
            c.cmd("MAIL FROM:<a@remote.example>", 250)
            c.cmd("RCPT TO:<alice@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(stuffed + b".\r\n")
            qid = c.expect(250).split()[-1]
            self.assertEqual(split_received(p.queue_body(qid))[1], original)

    def test_8bit_body_stored_byte_exact(self):
        original = ("From: <a@remote.example>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nMIME-Version: 1.0\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                    "Café, naïve, Grüße, 日本語\r\n").encode() + bytes(range(0x80, 0x100)) + b"\r\n"
        with Petrel() as p:
            c = self.greeted(p)
            c.cmd("MAIL FROM:<a@remote.example> BODY=8BITMIME", 250)
            c.cmd("RCPT TO:<alice@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(original + b".\r\n")
            qid = c.expect(250).split()[-1]
            self.assertEqual(split_received(p.queue_body(qid))[1], original)
            show = p.cli("queue", "show", qid).stdout
            self.assertIn("8BITMIME", show.upper())

    def test_received_header(self):
        with Petrel() as p:
            c = self.greeted(p)
            c.cmd("MAIL FROM:<a@remote.example>", 250)
            c.cmd("RCPT TO:<alice@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(message(subject="one") + ".\r\n")
            one = c.expect(250).split()[-1]
            c.cmd("MAIL FROM:<a@remote.example>", 250)
            c.cmd("RCPT TO:<alice@example.test>", 250)
            c.cmd("RCPT TO:<bob@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(message(subject="two") + ".\r\n")
            two = c.expect(250).split()[-1]

            received, _ = split_received(p.queue_body(one))
            self.assertIn(b"from client.example ([127.0.0.1])", received)
            self.assertIn(b"by mx.example.test", received)
            self.assertIn(b"with ESMTP id " + one.encode(), received)
            self.assertIn(b"for <alice@example.test>;", received)
            received, _ = split_received(p.queue_body(two))
            self.assertIn(b"id " + two.encode(), received)
            self.assertNotIn(b"for <", received)  # several recipients: not disclosed to each other


if __name__ == "__main__":
    unittest.main()
