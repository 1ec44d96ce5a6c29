"""The greylist plugin through real SMTP with two gateways sharing one redis-server: a new
triplet is refused with 451 4.7.1 and the time left, a retry before the delay is refused
again, a retry after it — through the other gateway — passes and the message reaches Postfix;
with Redis killed the store fail mode applies."""

import os
import time

from mgtest import base, util
from mgtest.policyctl import PolicyCtl, builtin_plugin
from mgtest.redisserver import RedisServer


class GreylistTest(base.PostfixCase):

    def setUp(self):
        builtin_plugin("greylist")
        d = util.make_tempdir("mailgate-greylist-")
        self.addCleanup(util.remove_tree, d)
        self.redis = RedisServer(d).start()
        self.addCleanup(self.redis.stop)
        self.ctl = PolicyCtl(os.path.join(d, "policy.db"))
        self.ctl.init()
        self.ctl("policy", "domain", "add", base.DOMAIN)
        self.ctl("policy", "plugin", "add", "--name", "greylist", "--path", "greylist.so",
                 "--fail-mode", "tempfail", "--timeout-ms", "3000", "--settings",
                 '{"delay": 2, "retry_window": 120, "expiry": 3600}')

    def gateway(self, *flags):
        gw = self.start_gateway(flags=[f"--policy_db={self.ctl.db}", "--policy_poll_ms=100",
                                       f"--redis={self.redis.address}", "--redis_timeout_ms=200",
                                       *flags])
        gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 1 plugin instances\)")
        return gw

    def rcpt(self, gw, source="127.0.0.2", sender="sender@example.org", deliver=False):
        c = self.connect(gw, source_address=(source, 0))
        c.cmd("EHLO client.example")
        self.assertEqual(c.cmd(f"MAIL FROM:<{sender}>").code, 250)
        r = c.cmd(f"RCPT TO:<{base.USER}>")
        if r.code == 250 and deliver:
            self.assertEqual(c.cmd("DATA").code, 354)
            self.assertEqual(c.data(b"Subject: greylisted once\r\n\r\nhello\r\n.\r\n").code, 250)
        c.quit()
        c.close()
        return r

    def test_full_cycle_across_two_gateways(self):
        a, b = self.gateway(), self.gateway()
        before = len(self.postfix.messages(base.USER))
        r = self.rcpt(a)
        self.assertEqual((r.code, r.enhanced), (451, "4.7.1"), r)
        self.assertEqual(r.text, "4.7.1 Greylisted, please try again in 2 seconds")
        r = self.rcpt(b, source="127.0.0.3")  # same /24, other gateway: the same triplet
        self.assertEqual((r.code, r.enhanced), (451, "4.7.1"), r)
        self.assertRegex(r.text, r"try again in [12] seconds?")
        time.sleep(2.1)
        r = self.rcpt(b, source="127.0.0.4", deliver=True)
        self.assertEqual(r.code, 250, r)
        b.wait_for_log(r"greylist passed 127\.0\.0\.0/24 sender@example\.org -> ")
        util.wait_until(lambda: len(self.postfix.messages(base.USER)) == before + 1 or None, 20,
                        what="the retried message delivered")
        self.assertEqual(self.rcpt(a).code, 250)  # remembered on the other gateway too
        r = self.rcpt(a, sender="new@example.org")
        self.assertEqual(r.code, 451, r)

    def test_redis_down_fail_mode(self):
        tempfail = self.gateway()
        open_ = self.gateway("--redis_fail_mode=open")
        self.redis.kill()
        r = self.rcpt(tempfail)
        self.assertEqual((r.code, r.enhanced), (451, "4.3.0"), r)
        self.assertEqual(self.rcpt(open_).code, 250)
        self.redis.restart()

        def greylisting_again():
            return self.rcpt(tempfail, sender="back@example.org").enhanced == "4.7.1" or None
        util.wait_until(greylisting_again, 10, interval=0.2, what="greylisting with Redis back")
