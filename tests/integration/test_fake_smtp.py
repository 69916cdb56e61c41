"""test_fake_smtp: the fake next-hop SMTP server (tests/testlib/fake_smtp.py) that the outbound
delivery tests stand on behaves as its docstring says: plain and STARTTLS sessions, AUTH, per-
recipient refusals, data replies, silence after the dot, the injected STARTTLS reply, and its
records (connections, transactions, un-stuffed and raw bodies). No petrel binary needed."""
import unittest

import fake_smtp


class FakeSmtpSelfTest(unittest.TestCase):
    def test_self_test(self):
        fake_smtp._self_test()


if __name__ == "__main__":
    unittest.main()
