#!/usr/bin/python3
"""test_smtp_extensions: the ESMTP extensions the receiver advertises, each as a client would use
it: SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), CHUNKING/BDAT (RFC 3030),
DSN (RFC 3461) and PIPELINING (RFC 2920)."""
import unittest

from petrel import codes, Dialog, message, Petrel, without_received


class SmtpTest(unittest.TestCase):
    def greeted(self, p):
        c = Dialog(p.port())
        self.addCleanup(c.close)
        c.expect(220)
        self.ehlo = c.cmd("EHLO client.example", 250)
        return c

    def envelope(self, c, mail="MAIL FROM:<a@remote.example>", rcpt="RCPT TO:<alice@example.test>"):
        c.cmd(mail, 250)
        c.cmd(rcpt, 250)

    def send_data(self, c, msg, code=250):
        c.cmd("DATA", 354)
        c.send(msg + (b".\r\n" if isinstance(msg, bytes) else ".\r\n"))
        return c.expect(code)


class Size(SmtpTest):
    def test_advertised_with_limit(self):
        with Petrel(smtp_toml='max_message_size = "64KiB"\n') as p:
            c = self.greeted(p)
            self.assertIn("250-SIZE 65536", self.ehlo)

    def test_declared_over_limit_refused_at_mail(self):
        with Petrel() as p:
            c = self.greeted(p)
            reply = c.cmd("MAIL FROM:<a@remote.example> SIZE=52428801", 552)
            self.assertEqual(codes(reply), ("552", "5.3.4"))
            c.cmd("MAIL FROM:<a@remote.example> SIZE=52428800", 250)
            c.cmd("RSET", 250)
            self.assertEqual(codes(c.cmd("MAIL FROM:<a@remote.example> SIZE=12x", 501)), ("501", "5.5.4"))
            c.cmd("MAIL FROM:<a@remote.example> SIZE=99999999999999999999999", 501)  # over 20 digits/64 bits

    def test_undeclared_oversize_read_to_the_end_then_552(self):
        with Petrel(smtp_toml='max_message_size = "64KiB"\n') as p:
            c = self.greeted(p)
            self.envelope(c)
            big = message(subject="too big", size=200_000)
            reply = self.send_data(c, big, 552)
            self.assertEqual(codes(reply), ("552", "5.3.4"))
            # The session goes on: the dot was found, nothing of the body is read as commands.
            self.envelope(c)
            qid = self.send_data(c, message(subject="small", size=60_000)).split()[-1]
            c.cmd("QUIT", 221)
            self.assertEqual(p.queue_ids(), [qid])

    def test_exactly_at_limit_accepted(self):
        with Petrel(smtp_toml='max_message_size = "64KiB"\n') as p:
            c = self.greeted(p)
            self.envelope(c)
            msg = message(subject="edge", size=65536)
            self.assertEqual(len(msg), 65536)
            qid = self.send_data(c, msg).split()[-1]
            self.assertEqual(without_received(p.queue_body(qid)), msg.encode())
            self.envelope(c)
            self.send_data(c, message(subject="edge+1", size=65537), 552)


class EightBitMime(SmtpTest):
    def test_body_parameter(self):
        with Petrel() as p:
            c = self.greeted(p)
            self.assertIn("250-8BITMIME", self.ehlo)
            c.cmd("MAIL FROM:<a@remote.example> BODY=7BIT", 250)
            c.cmd("RSET", 250)
            self.assertEqual(codes(c.cmd("MAIL FROM:<a@remote.example> BODY=BINARYMIME", 501)), ("501", "5.5.4"))
            self.assertEqual(codes(c.cmd("MAIL FROM:<a@remote.example> BODY=8BITMIME BODY=7BIT", 501)),
                             ("501", "5.5.4"))
            self.envelope(c, mail="MAIL FROM:<a@remote.example> BODY=8bitmime")
            msg = "Subject: 8bit\r\n\r\nS\u00f8ren \u00e5 \u2603\r\n".encode()
            qid = self.send_data(c, msg).split()[-1]
            self.assertEqual(without_received(p.queue_body(qid)), msg)
            self.assertIn("body: 8BITMIME", p.cli("queue", "show", qid).stdout)


class SmtpUtf8(SmtpTest):
    def test_utf8_sender_delivered(self):
        with Petrel() as p:
            c = self.greeted(p)
            self.assertIn("250-SMTPUTF8", self.ehlo)
            c.cmd("MAIL FROM:<j\u00f6rg@b\u00fccher.example> SMTPUTF8", 250)
            c.cmd("RCPT TO:<alice@example.test>", 250)
            msg = "From: <j\u00f6rg@b\u00fccher.example>\r\nSubject: gr\u00fc\u00dfe\r\n\r\nhi\r\n".encode()
            qid = self.send_data(c, msg).split()[-1]
            body = p.queue_body(qid)
            self.assertIn(b"with UTF8SMTP id " + qid.encode(), body)
            self.assertEqual(without_received(body), msg)
            show = p.cli("queue", "show", qid).stdout
            self.assertIn("smtputf8=yes", show)
            # `queue show` prints peer text through the log escaper: non-ASCII octets as \xNN.
            self.assertIn("from: j\\xc3\\xb6rg@b\\xc3\\xbccher.example", show)

    def test_utf8_recipients(self):
        with Petrel() as p:
            c = self.greeted(p)
            c.cmd("MAIL FROM:<a@remote.example> SMTPUTF8", 250)
            # Our domain has no such (UTF-8) user: the ordinary unknown-user answer.
            self.assertEqual(codes(c.cmd("RCPT TO:<j\u00f6rg@example.test>", 550)), ("550", "5.1.1"))
            # Somebody else's UTF-8 domain: no relaying for an untrusted client.
            self.assertEqual(codes(c.cmd("RCPT TO:<user@b\u00fccher.example>", 554)), ("554", "5.7.1"))
            c.cmd("RCPT TO:<alice@example.test>", 250)

    def test_utf8_address_without_smtputf8_is_553(self):
        with Petrel() as p:
            c = self.greeted(p)
            self.assertEqual(codes(c.cmd("MAIL FROM:<j\u00f6rg@remote.example>", 553)), ("553", "5.6.7"))
            c.cmd("MAIL FROM:<a@remote.example>", 250)
            self.assertEqual(codes(c.cmd("RCPT TO:<j\u00f6rg@example.test>", 553)), ("553", "5.6.7"))

    def test_invalid_utf8_is_501(self):
        with Petrel() as p:
            c = self.greeted(p)
            for bad in (b"MAIL FROM:<j\xf6rg@remote.example> SMTPUTF8\r\n",  # Latin-1, not UTF-8
                        b"MAIL FROM:<j\xc3@remote.example> SMTPUTF8\r\n",  # truncated sequence
                        b"MAIL FROM:<\xed\xa0\x80@remote.example> SMTPUTF8\r\n"):  # surrogate
                c.send(bad)
                code, lines = c.reply()
                self.assertEqual(code, 501, (bad, lines))
            c.cmd("MAIL FROM:<a@remote.example> SMTPUTF8", 250)
            c.send(b"RCPT TO:<\xc0\xafx@example.test>\r\n")  # overlong encoding
            self.assertEqual(c.reply()[0], 501)
            c.cmd("RCPT TO:<alice@example.test>", 250)

    def test_not_accepted_after_helo(self):
        with Petrel() as p:
            c = Dialog(p.port())
            self.addCleanup(c.close)
            c.expect(220)
            c.cmd("HELO client.example", 250)
            self.assertEqual(codes(c.cmd("MAIL FROM:<a@remote.example> SMTPUTF8", 555)), ("555", "5.5.4"))


class Chunking(SmtpTest):
    def bdat(self, c, chunk, last=False, code=250):
        c.send(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk)
        return c.expect(code)

    def test_single_chunk_last(self):
        msg = b"Subject: bdat\r\n\r\n.leading dot kept as is\r\nend\r\n"
        with Petrel() as p:
            c = self.greeted(p)
            self.assertIn("250-CHUNKING", self.ehlo)
            self.envelope(c)
            qid = self.bdat(c, msg, last=True).split()[-1]
            self.assertEqual(without_received(p.queue_body(qid)), msg)

    def test_several_chunks_and_bdat_0_last(self):
        parts = [b"Subject: chunks\r\n", b"\r\nfirst ", b"line\r\n" + b"z" * 5000 + b"\r\n", b"last\r\n"]
        with Petrel() as p:
            c = self.greeted(p)
            self.envelope(c)
            total = 0
            for part in parts:
                total += len(part)
                reply = self.bdat(c, part)
                self.assertEqual(codes(reply), ("250", "2.0.0"))
                self.assertIn(f"{total} octets", reply)
            # DATA cannot interleave with BDAT.
            c.cmd("DATA", 503)
            qid = self.bdat(c, b"", last=True).split()[-1]
            self.assertEqual(without_received(p.queue_body(qid)), b"".join(parts))

    def test_pipelined_chunks(self):
        msg = b"Subject: pipelined bdat\r\n\r\n" + b"0123456789" * 300 + b"\r\n"
        with Petrel() as p:
            c = self.greeted(p)
            a, b = msg[:1000], msg[1000:]
            c.send(b"MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
                   + b"BDAT %d\r\n" % len(a) + a + b"BDAT %d LAST\r\n" % len(b) + b + b"NOOP\r\n")
            self.assertEqual([c.reply()[0] for _ in range(6)], [250, 250, 250, 250, 250, 250])
            ids = p.queue_ids()
            self.assertEqual(len(ids), 1)
            self.assertEqual(without_received(p.queue_body(ids[0])), msg)

    def test_bdat_before_mail_consumes_chunk(self):
        with Petrel() as p:
            c = self.greeted(p)
            chunk = b"NOOP\r\nRSET\r\nQUIT\r\n"
            reply = self.bdat(c, chunk, code=503)
            self.assertEqual(codes(reply), ("503", "5.5.1"))
            # Had the chunk been read as commands, NOOP's 250 would be followed by more replies.
            c.cmd("HELP", 214)
            self.envelope(c)
            self.bdat(c, b"Subject: after\r\n\r\nok\r\n", last=True)

    def test_bdat_before_ehlo_closes(self):
        # Without EHLO the client never learnt of CHUNKING; the session ends rather than guess.
        with Petrel() as p:
            c = Dialog(p.port())
            self.addCleanup(c.close)
            c.expect(220)
            self.assertEqual(codes(c.cmd("BDAT 5 LAST", 503)), ("503", "5.5.1"))
            self.assertTrue(c.closed())

    def test_bad_bdat_syntax_closes(self):
        with Petrel() as p:
            c = self.greeted(p)
            self.envelope(c)
            self.assertEqual(codes(c.cmd("BDAT ten", 501)), ("501", "5.5.4"))
            self.assertTrue(c.closed())
            self.assertEqual(p.queue_ids(), [])

    def test_oversize_across_chunks(self):
        with Petrel(smtp_toml='max_message_size = "64KiB"\n') as p:
            c = self.greeted(p)
            self.envelope(c)
            self.bdat(c, b"Subject: big\r\n\r\n" + b"a" * 40000)
            reply = self.bdat(c, b"b" * 40000, code=552)
            self.assertEqual(codes(reply), ("552", "5.3.4"))
            # The transaction is over: a further chunk is counted off and refused.
            self.bdat(c, b"c" * 100, last=True, code=503)
            self.envelope(c)
            qid = self.bdat(c, b"Subject: fits\r\n\r\nok\r\n", last=True).split()[-1]
            self.assertEqual(p.queue_ids(), [qid])

    def test_oversize_in_last_chunk(self):
        with Petrel(smtp_toml='max_message_size = "64KiB"\n') as p:
            c = self.greeted(p)
            self.envelope(c)
            self.assertEqual(codes(self.bdat(c, b"x" * 70000, last=True, code=552)), ("552", "5.3.4"))
            c.cmd("NOOP", 250)
            self.assertEqual(p.queue_ids(), [])

    def test_chunk_bytes_are_never_commands(self):
        msg = b"Subject: smuggle\r\n\r\nline\r\n.\r\nQUIT\r\nMAIL FROM:<x@y.example>\r\n"
        with Petrel() as p:
            c = self.greeted(p)
            self.envelope(c)
            qid = self.bdat(c, msg, last=True).split()[-1]
            c.cmd("NOOP", 250)  # still connected: QUIT inside the chunk was data
            self.assertEqual(without_received(p.queue_body(qid)), msg)
            self.assertEqual(p.queue_ids(), [qid])


class Dsn(SmtpTest):
    def test_parameters_recorded(self):
        with Petrel() as p:
            c = self.greeted(p)
            self.assertIn("250-DSN", self.ehlo)
            self.envelope(c, mail="MAIL FROM:<a@remote.example> RET=HDRS ENVID=abc+2Bdef",
                          rcpt="RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+40y")
            c.cmd("RCPT TO:<bob@example.test> NOTIFY=NEVER", 250)
            qid = self.send_data(c, message(subject="dsn")).split()[-1]
            show = p.cli("queue", "show", qid).stdout
            self.assertIn("ret=HDRS", show)
            self.assertIn("envid=abc+def", show)
            self.assertIn("to: alice@example.test notify=SUCCESS,FAILURE orcpt=rfc822;x@y", show)
            self.assertIn("to: bob@example.test notify=NEVER", show)

    def test_notify_never_with_others_501(self):
        with Petrel() as p:
            c = self.greeted(p)
            c.cmd("MAIL FROM:<a@remote.example>", 250)
            self.assertEqual(codes(c.cmd("RCPT TO:<alice@example.test> NOTIFY=NEVER,SUCCESS", 501)), ("501", "5.5.4"))
            c.cmd("RCPT TO:<alice@example.test> NOTIFY=BOGUS", 501)
            c.cmd("RCPT TO:<alice@example.test> NOTIFY=DELAY", 250)

    def test_bad_envid_501(self):
        with Petrel() as p:
            c = self.greeted(p)
            for bad in ("ENVID=a+zz", "ENVID=a+0D+0Ab", "ENVID=a+0Ab", "ENVID=" + "x" * 101, "RET=NONE"):
                self.assertEqual(codes(c.cmd(f"MAIL FROM:<a@remote.example> {bad}", 501)), ("501", "5.5.4"), bad)
            c.cmd("MAIL FROM:<a@remote.example> ENVID=" + "x" * 100, 250)

    def test_bad_orcpt_501(self):
        with Petrel() as p:
            c = self.greeted(p)
            c.cmd("MAIL FROM:<a@remote.example>", 250)
            for bad in ("ORCPT=rfc822", "ORCPT=;x@y", "ORCPT=rfc822;x+0Dy", "ORCPT=rfc822;x+4"):
                self.assertEqual(codes(c.cmd(f"RCPT TO:<alice@example.test> {bad}", 501)), ("501", "5.5.4"), bad)
            c.cmd("RCPT TO:<alice@example.test> ORCPT=rfc822;alice+40example.test", 250)


class Pipelining(SmtpTest):
    def test_advertised_and_replies_in_order(self):
        with Petrel() as p:
            c = self.greeted(p)
            self.assertIn("250-PIPELINING", self.ehlo)
            c.send("MAIL FROM:<a@remote.example>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<alice@example.test>\r\n"
                   "RSET\r\nMAIL FROM:<b@remote.example>\r\nNOOP\r\n")
            got = [c.reply()[0] for _ in range(6)]
            self.assertEqual(got, [250, 550, 250, 250, 250, 250])

    def test_content_before_354_refused(self):
        # RFC 2920 3.1: DATA ends a group; octets sent before the 354 are a protocol error.
        with Petrel() as p:
            c = self.greeted(p)
            self.envelope(c)
            c.send("DATA\r\nSubject: eager\r\n\r\nx\r\n.\r\n")
            self.assertEqual(codes(c.expect(554)), ("554", "5.5.0"))
            self.assertTrue(c.closed())
            self.assertEqual(p.queue_ids(), [])


if __name__ == "__main__":
    unittest.main()
