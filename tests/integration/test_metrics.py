"""Prometheus metrics on --metrics_listen (gateway/obs/), end to end: a gateway with the access
and spamscore plugins in front of a real Postfix takes accepted, refused and over-the-limit
traffic (and a dkim plugin whose key lookups the resolver answers from a local zone), and
GET /metrics shows every family moving: connections (open, total, refused by
limit), transactions by outcome, replies by class, refusals by stage, per-plugin verdicts and
latency histograms, backend connects and reply latency, spool bytes, DNS, build info. A second
gateway whose backend is down shows backend connect errors. The listener answers 404/405 and
closes each connection. Flag errors name the flag."""

import os
import socket
import subprocess
import unittest

from dnstest.zones import txt
from mgtest import base, util
from mgtest.gateway import Gateway
from mgtest.policyctl import PolicyCtl, builtin_plugin
from mgtest.smtpclient import message_data
from mgtest.obsclient import (BLOCKED, GTUBE, http_request, metrics_address, parse_prometheus,
                              policy_with_plugins, send)


class MetricsTest(base.PostfixCase):

    def test_metrics_follow_live_traffic(self):
        ctl = policy_with_plugins(self)
        gw = self.start_gateway(flags=[f"--policy_db={ctl.db}", "--metrics_listen=127.0.0.1:0",
                                       "--max_connections_per_ip=2"])
        gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 2 plugin instances\)")
        addr = metrics_address(gw)

        status, headers, body = http_request(addr, "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers)
        before = parse_prometheus(body)
        self.assertEqual(before['mailgate_transactions_total{outcome="accepted"}'], 0)
        self.assertEqual(before["mailgate_build_info"
                                '{version="0.1.0",compiler="' +
                                body.split('compiler="', 1)[1].split('"', 1)[0] + '"}'], 1)

        for i in range(3):
            _, final = send(self, gw, f"metrics-ok-{i}")
            self.assertEqual(final.code, 250, final)
        rcpt, final = send(self, gw, "metrics-blocked", rcpts=(BLOCKED,))
        self.assertEqual(rcpt[0].code, 554, rcpt[0])
        self.assertIsNone(final)
        _, final = send(self, gw, "metrics-gtube", body=f"{GTUBE}\r\n")
        self.assertEqual(final.code, 550, final)
        # A third connection from a client that holds two: refused by the per-client limit.
        for _ in range(2):
            held = self.connect(gw, source_address=("127.0.0.3", 0))
            self.assertEqual(held.greeting.code, 220)
        refused = self.connect(gw, source_address=("127.0.0.3", 0))
        self.assertEqual(refused.greeting.code, 421, refused.greeting)

        m = parse_prometheus(http_request(addr, "/metrics")[2])
        self.assertEqual(m['mailgate_transactions_total{outcome="accepted"}'], 3)
        self.assertEqual(m['mailgate_transactions_total{outcome="rejected"}'], 1)
        self.assertGreaterEqual(m["mailgate_connections_total"], 7)
        self.assertGreaterEqual(m["mailgate_connections_open"], 2)  # `held`
        self.assertEqual(m['mailgate_connections_refused_total{limit="per_client"}'], 1)
        self.assertEqual(m['mailgate_connections_refused_total{limit="total"}'], 0)
        self.assertEqual(m['mailgate_refusals_total{stage="rcpt"}'], 1)
        self.assertGreaterEqual(m['mailgate_replies_total{class="2xx"}'], 20)
        self.assertGreaterEqual(m['mailgate_replies_total{class="3xx"}'], 4)
        self.assertGreaterEqual(m['mailgate_replies_total{class="4xx"}'], 1)  # the 421
        self.assertGreaterEqual(m['mailgate_replies_total{class="5xx"}'], 2)
        self.assertEqual(m['mailgate_transaction_seconds_count'], 4)
        self.assertEqual(m['mailgate_transaction_seconds_bucket{le="+Inf"}'], 4)
        # Per plugin: access refused one recipient; spamscore rejected GTUBE at end of data.
        self.assertEqual(m['mailgate_plugin_verdicts_total{plugin="access",action="reject"}'], 1)
        self.assertEqual(m['mailgate_plugin_verdicts_total{plugin="spamscore",action="reject"}'],
                         1)
        self.assertGreaterEqual(
            m['mailgate_plugin_verdicts_total{plugin="spamscore",action="continue"}'], 3)
        self.assertGreater(m['mailgate_plugin_call_seconds_count{plugin="access"}'], 0)
        self.assertEqual(m['mailgate_plugin_call_seconds_count{plugin="spamscore"}'],
                         m['mailgate_plugin_call_seconds_bucket{plugin="spamscore",le="+Inf"}'])
        self.assertEqual(m['mailgate_plugin_failures_total{plugin="access"}'], 0)
        # Backend, spool, DNS.
        self.assertGreaterEqual(m["mailgate_backend_connects_total"], 1)
        self.assertEqual(m["mailgate_backend_connect_errors_total"], 0)
        self.assertGreaterEqual(m["mailgate_backend_connect_seconds_count"], 1)
        self.assertGreaterEqual(m["mailgate_backend_reply_seconds_count"], 10)
        self.assertGreater(m["mailgate_spool_bytes_total"], 4 * 60)
        self.assertIn('mailgate_dns_queries_total{mode="async"}', m)
        self.assertIn("mailgate_dns_cache_hit_ratio", m)
        self.assertIn('mailgate_backend_errors_total{kind="unavailable"}', m)

    def test_dns_figures_come_from_the_resolver(self):
        # The dkim plugin looks up the signing key of a DKIM-Signature; the gateway's resolver
        # answers from a local zone (--dns_servers=none: no query leaves the process).
        d = util.make_tempdir("mailgate-obs-dns-")
        self.addCleanup(util.remove_tree, d)
        zones = os.path.join(d, "zones.conf")
        with open(zones, "w") as f:
            f.write('local-zone: "signer.test." static\n' +
                    txt("sel._domainkey.signer.test.", "v=DKIM1; p=") + "\n")
        ctl = PolicyCtl(os.path.join(d, "policy.db"))
        ctl.init()
        ctl("policy", "domain", "add", base.DOMAIN)
        ctl("policy", "plugin", "add", "--name", "dkim", "--path", builtin_plugin("dkim"),
            "--fail-mode", "open", "--timeout-ms", "5000")
        gw = self.start_gateway(flags=[f"--policy_db={ctl.db}", "--metrics_listen=127.0.0.1:0",
                                       f"--dns_local_zones={zones}"])
        gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 1 plugin instances\)")
        addr = metrics_address(gw)
        signature = ("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=signer.test; "
                     "s=sel; h=from:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; "
                     "b=AAAA\r\n")
        for i in range(2):
            c = self.connect(gw)
            self.assertEqual(c.cmd("EHLO client.example").code, 250)
            self.assertEqual(c.cmd("MAIL FROM:<a@signer.test>").code, 250)
            self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
            self.assertEqual(c.cmd("DATA").code, 354)
            c.data(message_data((signature + f"From: a@signer.test\r\nSubject: dns-{i}\r\n"
                                 "\r\nhello\r\n").encode()))
            c.quit()
        m = parse_prometheus(http_request(addr, "/metrics")[2])
        queries = m['mailgate_dns_queries_total{mode="sync"}'] + \
            m['mailgate_dns_queries_total{mode="async"}']
        self.assertGreaterEqual(queries, 2)
        answers = sum(v for k, v in m.items() if k.startswith("mailgate_dns_answers_total"))
        self.assertEqual(answers, m["mailgate_dns_query_seconds_count"])
        self.assertGreaterEqual(answers, 2)
        self.assertEqual(m['mailgate_dns_query_seconds_bucket{le="+Inf"}'], answers)
        self.assertAlmostEqual(m["mailgate_dns_cache_hit_ratio"],
                               m["mailgate_dns_cache_hits_total"] / answers, places=6)
        self.assertEqual(m["mailgate_dns_in_flight"], 0)
        self.assertLessEqual(m["mailgate_dns_answer_cache_hits_total"],
                             m["mailgate_dns_cache_hits_total"])

    def test_backend_down_counts_connect_errors(self):
        port = util.free_port()  # nothing listens there
        gw = self.start_gateway(flags=["--metrics_listen=127.0.0.1:0"], backend_port=port)
        addr = metrics_address(gw)
        c = self.connect(gw)
        self.assertEqual(c.cmd("EHLO client.example").code, 250)
        r = c.cmd("MAIL FROM:<a@example.org>")
        self.assertEqual(r.code, 451, r)
        m = parse_prometheus(http_request(addr, "/metrics")[2])
        self.assertGreaterEqual(m["mailgate_backend_connect_errors_total"], 1)
        self.assertGreaterEqual(m['mailgate_backend_errors_total{kind="unavailable"}'], 1)
        self.assertEqual(m["mailgate_backend_connect_seconds_count"], 0)

    def test_listener_answers_only_what_it_serves(self):
        gw = self.start_gateway(flags=["--metrics_listen=127.0.0.1:0"])
        addr = metrics_address(gw)
        self.assertEqual(http_request(addr, "/nope")[0], 404)
        status, headers, _ = http_request(addr, "/metrics", method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers["Allow"], "GET, HEAD")
        status, _, body = http_request(addr, "/metrics", method="HEAD")
        self.assertEqual((status, body), (200, ""))
        # SMTP to the metrics port gets an HTTP 400, and the connection is closed.
        with socket.create_connection(addr, timeout=5) as s:
            s.sendall(b"EHLO x\r\n\r\n")
            data = s.recv(4096)
            self.assertTrue(data.startswith(b"HTTP/1.1 400 "), data)

    def test_bad_flag_is_named(self):
        spool = util.make_tempdir("mailgate-spool-")
        self.addCleanup(util.remove_tree, spool)
        for value, words in (("localhost:x", "--metrics_listen"),
                             ("mx.example:9000", "is not an IP address")):
            p = subprocess.run([base.require_binary(), f"--metrics_listen={value}",
                                "--listen=127.0.0.1:0", "--dns_servers=none",
                                f"--spool_dir={spool}"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(words, p.stderr)
        # A port in use: exit 1 and the flag named.
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            gw = Gateway(flags=[f"--metrics_listen=127.0.0.1:{busy.getsockname()[1]}"],
                         backend_port=self.postfix.port)
            with self.assertRaises(Exception):
                gw.start()
            self.assertIn("--metrics_listen: cannot bind", gw.log_text())


if __name__ == "__main__":
    unittest.main()
