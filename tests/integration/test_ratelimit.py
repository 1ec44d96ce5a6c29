"""The ratelimit plugin through real SMTP: 30 messages per /24 hold exactly through one gateway
(in-memory store) and across two gateways sharing one redis-server; a
redis-server killed (SIGKILL) or stopped (SIGSTOP) mid-test makes the gateway answer by its
store fail mode within the Redis timeout (never a hang), and it recovers by itself when Redis
is back. Clients are 127.0.0.x / 127.0.1.x source addresses (two /24 networks on loopback);
the backend is a private Postfix.

Counting tests use 30 per hour (one more every 120 s), so the real time a loaded machine takes
to send 30 messages cannot refill the bucket and the 31st is refused exactly; "30 a minute"
(one more every 2 s) is checked exactly on the fake clock in tests/unit/plugins/
ratelimit_test.cc, and its retry hint and refill here with a 1-per-2-seconds limit."""

import os
import time

from mgtest import base, util
from mgtest.policyctl import PolicyCtl, builtin_plugin
from mgtest.redisserver import RedisServer

PER_24 = ("INSERT INTO ratelimits (name, what, key, ipv4_prefix, rate, period, action) "
          "VALUES ('per-24', 'messages', 'client_ip', 24, 30, 3600, 'tempfail')")


class RateLimitCase(base.PostfixCase):

    def policy(self, *rows, settings="{}"):
        builtin_plugin("ratelimit")
        d = util.make_tempdir("mailgate-ratelimit-policy-")
        self.addCleanup(util.remove_tree, d)
        ctl = PolicyCtl(os.path.join(d, "policy.db"))
        ctl.init()
        ctl("policy", "domain", "add", base.DOMAIN)
        ctl("policy", "plugin", "add", "--name", "ratelimit", "--path", "ratelimit.so",
            "--fail-mode", "tempfail", "--timeout-ms", "3000", "--settings", settings)
        for sql in rows:
            ctl.hand_edit(sql)
        return ctl

    def redis(self):
        d = util.make_tempdir("mailgate-redis-")
        self.addCleanup(util.remove_tree, d)
        r = RedisServer(d).start()
        self.addCleanup(r.stop)
        return r

    def gateway(self, ctl, *flags):
        gw = self.start_gateway(flags=[f"--policy_db={ctl.db}", "--policy_poll_ms=100", *flags])
        gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 1 plugin instances\)")
        return gw

    def mail(self, gw, source, sender="sender@example.org"):
        """One transaction up to RCPT from `source`; the MAIL reply (RSET after)."""
        c = self.connect(gw, source_address=(source, 0))
        self.assertEqual(c.greeting.code, 220, c.greeting)
        self.assertEqual(c.cmd("EHLO client.example").code, 250)
        r = c.cmd(f"MAIL FROM:<{sender}>", timeout=10)
        if r.code == 250:
            self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        c.quit()
        c.close()
        return r


class OneGatewayTest(RateLimitCase):

    def test_thirty_messages_per_24(self):
        ctl = self.policy()
        ctl("policy", "ratelimit", "add", "per-24", "--what", "messages", "--key", "client_ip",
            "--ipv4-prefix", "24", "--rate", "30", "--period", "3600")
        gw = self.gateway(ctl)
        for i in range(30):
            r = self.mail(gw, f"127.0.0.{2 + i % 5}")
            self.assertEqual(r.code, 250, f"message {i + 1}: {r}")
        r = self.mail(gw, "127.0.0.9")
        self.assertEqual((r.code, r.enhanced), (451, "4.7.1"), r)
        self.assertRegex(r.text, r"Rate limit 'per-24' exceeded, try again in 1[012]\d seconds")
        gw.wait_for_log(r"limit 'per-24' exceeded: messages by 127\.0\.0\.0/24, 30 per 3600s")
        # Another /24 is counted on its own.
        self.assertEqual(self.mail(gw, "127.0.1.2").code, 250)

    def test_thirty_a_minute_per_24(self):
        """The Done-when limit as written. GCRA refills one message every 2 s, so over the
        real time this takes the bound is 30 + (elapsed / 2 s) + 1; the first 30 always pass."""
        ctl = self.policy()
        ctl("policy", "ratelimit", "add", "per-24", "--what", "messages", "--key", "client_ip",
            "--ipv4-prefix", "24", "--rate", "30", "--period", "60")
        gw = self.gateway(ctl)
        clients = []
        for i in range(5):
            c = self.connect(gw, source_address=(f"127.0.0.{2 + i}", 0))
            self.assertEqual(c.cmd("EHLO client.example").code, 250)
            clients.append(c)
        codes = []
        t0 = time.monotonic()
        for i in range(40):
            c = clients[i % 5]
            r = c.cmd("MAIL FROM:<sender@example.org>", timeout=10)
            codes.append(r.code)
            if r.code == 451:
                self.assertEqual(r.enhanced, "4.7.1", r)
                self.assertRegex(r.text, r"Rate limit 'per-24' exceeded, try again in [12] "
                                         r"seconds?")
            c.cmd("RSET")
        elapsed = time.monotonic() - t0
        self.assertEqual(codes[:30], [250] * 30)
        self.assertLessEqual(codes.count(250), 30 + int(elapsed / 2) + 1, (elapsed, codes))
        self.assertEqual(set(codes), {250, 451}, (elapsed, codes))
        # The other /24 is not affected.
        self.assertEqual(self.mail(gw, "127.0.1.2").code, 250)

    def test_retry_hint_and_refill(self):
        gw = self.gateway(self.policy(
            "INSERT INTO ratelimits (name, what, key, rate, period, burst) "
            "VALUES ('slow', 'messages', 'client_ip', 1, 2, 1)"))
        self.assertEqual(self.mail(gw, "127.0.0.2").code, 250)
        r = self.mail(gw, "127.0.0.2")
        self.assertEqual((r.code, r.enhanced), (451, "4.7.1"), r)
        self.assertRegex(r.text, r"Rate limit 'slow' exceeded, try again in [12] seconds?")
        time.sleep(2.1)
        self.assertEqual(self.mail(gw, "127.0.0.2").code, 250)

    def test_connections_refused_before_the_greeting(self):
        gw = self.gateway(self.policy(
            "INSERT INTO ratelimits (name, what, key, rate, period) "
            "VALUES ('conn', 'connections', 'client_ip', 2, 3600)"))
        for _ in range(2):
            c = self.connect(gw, source_address=("127.0.0.2", 0))
            self.assertEqual(c.greeting.code, 220, c.greeting)
            c.quit()
        c = self.connect(gw, source_address=("127.0.0.2", 0))
        self.assertEqual((c.greeting.code, c.greeting.enhanced), (421, "4.7.1"), c.greeting)
        self.assertIn("Rate limit 'conn' exceeded", c.greeting.text)
        self.assertTrue(c.wait_closed())
        c = self.connect(gw, source_address=("127.0.0.3", 0))
        self.assertEqual(c.greeting.code, 220, c.greeting)

    def test_exempt_network_and_a_real_delivery(self):
        ctl = self.policy(
            "INSERT INTO ratelimits (name, what, key, rate, period) "
            "VALUES ('one', 'messages', 'client_ip', 1, 3600)",
            "INSERT INTO ratelimit_exemptions (kind, value) VALUES ('network', '127.0.1.0/24')")
        gw = self.gateway(ctl)
        before = len(self.postfix.messages(base.USER))
        c = self.connect(gw, source_address=("127.0.0.2", 0))
        c.cmd("EHLO client.example")
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        self.assertEqual(c.data(b"Subject: counted\r\n\r\nhello\r\n.\r\n").code, 250)
        r = c.cmd("MAIL FROM:<a@example.org>")
        self.assertEqual((r.code, r.enhanced), (451, "4.7.1"), r)
        util.wait_until(lambda: len(self.postfix.messages(base.USER)) == before + 1 or None, 20,
                        what="the first message delivered")
        for _ in range(3):
            self.assertEqual(self.mail(gw, "127.0.1.7").code, 250)


class SharedRedisTest(RateLimitCase):

    def test_two_gateways_enforce_one_limit(self):
        redis = self.redis()
        ctl = self.policy(PER_24)
        a = self.gateway(ctl, f"--redis={redis.address}")
        b = self.gateway(ctl, f"--redis={redis.address}")
        a.wait_for_log(r"counter store: redis 127\.0\.0\.1:\d+")
        codes = []
        for i in range(30):
            gw = a if i % 2 == 0 else b
            codes.append(self.mail(gw, f"127.0.0.{2 + i % 7}").code)
        self.assertEqual(codes, [250] * 30)
        for gw in (a, b):
            r = self.mail(gw, "127.0.0.20")
            self.assertEqual((r.code, r.enhanced), (451, "4.7.1"), r)
        self.assertEqual(self.mail(b, "127.0.1.3").code, 250)

    def test_redis_killed_then_restarted(self):
        redis = self.redis()
        ctl = self.policy(PER_24)
        tempfail = self.gateway(ctl, f"--redis={redis.address}", "--redis_timeout_ms=200")
        open_ = self.gateway(ctl, f"--redis={redis.address}", "--redis_timeout_ms=200",
                             "--redis_fail_mode=open")
        self.assertEqual(self.mail(tempfail, "127.0.0.2").code, 250)
        self.assertEqual(self.mail(open_, "127.0.0.2").code, 250)
        redis.kill()
        t0 = time.monotonic()
        r = self.mail(tempfail, "127.0.0.2")
        self.assertEqual((r.code, r.enhanced), (451, "4.3.0"), r)
        self.assertEqual(self.mail(open_, "127.0.0.2").code, 250)
        self.assertLess(time.monotonic() - t0, 5)
        tempfail.wait_for_log(r"rate limit store unavailable; limit 'per-24' not checked")
        # Back: both recover by themselves, and counting starts afresh (an empty server).
        redis.restart()

        def recovered():
            return self.mail(tempfail, "127.0.0.2").code == 250 or None
        util.wait_until(recovered, 10, interval=0.2, what="the gateway using Redis again")
        for _ in range(29):
            self.mail(open_, "127.0.0.3")
        r = self.mail(tempfail, "127.0.0.4")
        self.assertEqual((r.code, r.enhanced), (451, "4.7.1"), r)

    def test_stopped_redis_never_hangs_a_session(self):
        redis = self.redis()
        ctl = self.policy(PER_24, settings='{"store_fail_mode": "open"}')
        gw = self.gateway(ctl, f"--redis={redis.address}", "--redis_timeout_ms=300")
        self.assertEqual(self.mail(gw, "127.0.0.2").code, 250)
        redis.pause()
        try:
            t0 = time.monotonic()
            for _ in range(3):
                self.assertEqual(self.mail(gw, "127.0.0.2").code, 250)  # the plugin's "open"
            self.assertLess(time.monotonic() - t0, 3)
        finally:
            redis.resume()
        gw.wait_for_log(r"store fail mode open")
