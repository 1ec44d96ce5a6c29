"""The `dkim` plugin (plugins/dkim/) in the real gateway, in front of a real Postfix, with a real
unbound on loopback serving the key records of the test zone dkim.test.

Owns: messages signed by an independent signer (python3-dkim, mgtest.dkimtool) — valid, body
tampered after signing, a header tampered after signing, signed with a selector that has no
key, rsa-sha1, ed25519-sha256 — go through the gateway and are delivered by Postfix (the plugin
only scores by default); for each, the plugin's result as printed by `mailgatectl check` (with
--dns-servers pointing at the unbound) and as logged by the gateway (its dkim line, and the
per-transaction line's score) agrees with python3-dkim's own verification of the same message
against the same DNS server. rsa-sha1 is where they differ by design: python3-dkim accepts it,
the plugin applies RFC 8301 (DKIM_INVALID with DKIM_SHA1). Two signatures (one valid, one
by a key that does not match) get one symbol each. A DNS server that never answers gives
DKIM_TEMPERROR, and with "tempfail_on_dns_error" the gateway answers 451 4.7.5; with
"reject_invalid" a tampered message is refused 550 5.7.20. Postfix never sees either.

The clients connect from loopback: DKIM does not depend on the client address, so no network
namespace is needed.
"""

import json
import os
import unittest
import uuid

from dnstest import SilentServer, UnboundServer, unbound_binary
from mgtest import base, dkimtool, util
from mgtest.policyctl import PolicyCtl, builtin_plugin
from mgtest.smtpclient import message_data

ZONE = "dkim.test"
KEY_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "plugins",
                       "dkim_keys")


def _read(name):
    with open(os.path.join(KEY_DIR, name), encoding="ascii") as f:
        return f.read().strip()


def _txt(name, record):
    chunks = [record[i:i + 200] for i in range(0, len(record), 200)]
    quoted = " ".join('"' + c + '"' for c in chunks)
    return f"local-data: '{name} 300 IN TXT {quoted}'"


def _zones(ed25519_public):
    return "\n".join([
        f'local-zone: "{ZONE}." static',
        f'local-data: "{ZONE}. 3600 IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60"',
        _txt(f"s2048._domainkey.{ZONE}.", "v=DKIM1; k=rsa; p=" + _read("rsa2048.pub.b64")),
        _txt(f"s1024._domainkey.{ZONE}.", "v=DKIM1; k=rsa; p=" + _read("rsa1024.pub.b64")),
        _txt(f"ed._domainkey.{ZONE}.", "v=DKIM1; k=ed25519; p=" + ed25519_public),
    ]) + "\n"


def token():
    return uuid.uuid4().hex[:12]


def message(t, case):
    return (f"From: Alice <alice-{t}@{ZONE}>\r\n"
            f"To: <{base.USER}>\r\n"
            f"Subject: dkim-{case}-{t}\r\n"
            f"Date: Sun, 22 Nov 2026 01:00:00 +0000\r\n"
            f"Message-ID: <{t}.{case}@{ZONE}>\r\n"
            f"\r\n"
            f"Hello,\r\n"
            f"this message is signed ({case}).\r\n")


@unittest.skipUnless(unbound_binary(), "unbound(8) is not installed")
@unittest.skipUnless(dkimtool.available(), "python3-dkim is not installed for /usr/bin/python3")
class DkimGatewayTest(base.PostfixCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.ed25519 = dkimtool.run([{"op": "ed25519_keygen"}])[0]
            cls.dns = UnboundServer(_zones(cls.ed25519["public"])).start()
        except BaseException:
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.dns.close()
        finally:
            super().tearDownClass()

    def setUp(self):
        self.plugin = builtin_plugin("dkim")  # a clear error when dkim.so was not built
        d = util.make_tempdir("mailgate-dkim-policy-")
        self.addCleanup(util.remove_tree, d)
        self.dir = d
        self.ctl = PolicyCtl(os.path.join(d, "policy.db"))
        self.ctl.init()
        self.ctl("policy", "domain", "add", base.DOMAIN)
        self.ctl("policy", "plugin", "add", "--name", "dkim", "--path", self.plugin,
                 "--settings", "{}", "--fail-mode", "tempfail", "--timeout-ms", "15000")

    def gateway(self, dns=None):
        gw = self.start_gateway(flags=[f"--policy_db={self.ctl.db}", "--policy_poll_ms=100",
                                       f"--dns_servers={(dns or self.dns).forwarder}",
                                       "--dns_timeout_ms=2000"])
        gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 1 plugin instances\)")
        return gw

    # --- the cases, signed by python3-dkim -------------------------------------------------

    def cases(self, t):
        """(case, signed message) for each case; tampering happens after signing."""
        key2048 = _read("rsa2048.pem")
        key1024 = _read("rsa1024.pem")
        sign = [
            ("valid", "s2048", key2048, "rsa-sha256", "relaxed/relaxed"),
            ("simple", "s1024", key1024, "rsa-sha256", "simple/simple"),
            ("body", "s2048", key2048, "rsa-sha256", "relaxed/relaxed"),
            ("header", "s2048", key2048, "rsa-sha256", "relaxed/relaxed"),
            ("nokey", "gone", key2048, "rsa-sha256", "relaxed/relaxed"),
            ("sha1", "s1024", key1024, "rsa-sha1", "relaxed/relaxed"),
            ("ed25519", "ed", self.ed25519["private"], "ed25519-sha256", "relaxed/relaxed"),
        ]
        signed = dkimtool.run([{"op": "sign", "message": message(t, case), "domain": ZONE,
                                "selector": sel, "key": key, "alg": alg, "canon": canon}
                               for case, sel, key, alg, canon in sign])
        out = dict(zip([s[0] for s in sign], signed))
        out["body"] = out["body"].replace("this message is signed", "this message was changed")
        out["header"] = out["header"].replace(f"Subject: dkim-header-{t}",
                                              f"Subject: dkim-HEADER-{t}")
        return out

    def python_verdicts(self, messages):
        results = dkimtool.run([{"op": "verify", "message": m, "dns_port": self.dns.port}
                                for m in messages.values()])
        return dict(zip(messages.keys(), results))

    def check(self, t, case, text, dns=None, extra=()):
        """mailgatectl check --json over the message: the dkim plugin's symbols by name."""
        path = os.path.join(self.dir, f"{case}.eml")
        with open(path, "w", encoding="ascii", newline="") as f:
            f.write(text)
        p = self.ctl.run("--json", "check", "--client-ip", "127.0.0.1", "--helo",
                         "client.dkim.test", "--from", f"alice-{t}@{ZONE}", "--to", base.USER,
                         "--dns-servers", (dns or self.dns).forwarder, *extra, path,
                         timeout=60)
        self.assertEqual(p.returncode, 0, f"check {case}: exit {p.returncode}\n{p.stdout}\n"
                                          f"{p.stderr}")
        report = json.loads(p.stdout)
        return {s["name"]: s for s in report["symbols"] if s.get("plugin") == "dkim"}, report

    def send(self, gw, t, case, text):
        c = self.connect(gw, timeout=30)
        self.assertEqual(c.greeting.code, 220, c.greeting)
        self.assertEqual(c.cmd("EHLO client.dkim.test").code, 250)
        self.assertEqual(c.cmd(f"MAIL FROM:<alice-{t}-{case}@{ZONE}>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        r = c.data(message_data(text.encode("ascii")))
        self.assertEqual(r.code, 250, r)
        c.quit()

    def delivered(self, subject):
        for m in self.postfix.messages(base.USER):
            if f"Subject: {subject}".encode() in m:
                return m
        return None

    # Expected symbol of the plugin, from python3-dkim's verdict and the case.
    EXPECTED = {
        "valid": ("DKIM_VALID", -1.0),
        "simple": ("DKIM_VALID", -1.0),
        "body": ("DKIM_INVALID", 2.0),
        "header": ("DKIM_INVALID", 2.0),
        "nokey": ("DKIM_NOKEY", 0.0),
        "sha1": ("DKIM_INVALID", 2.0),
        "ed25519": ("DKIM_VALID", -1.0),
    }

    def test_results_agree_with_python3_dkim_through_check_and_the_gateway(self):
        t = token()
        messages = self.cases(t)
        verdicts = self.python_verdicts(messages)
        # python3-dkim's own view of the same inputs.
        self.assertEqual(verdicts, {"valid": [True], "simple": [True], "body": [False],
                                    "header": [False], "nokey": [False], "sha1": [True],
                                    "ed25519": [True]})
        gw = self.gateway()
        for case, text in messages.items():
            with self.subTest(case=case):
                symbol, score = self.EXPECTED[case]
                passed = verdicts[case][0]
                # Agreement: the plugin says valid exactly when python3-dkim verifies, except
                # rsa-sha1, which RFC 8301 makes unacceptable.
                self.assertEqual(symbol == "DKIM_VALID", passed and case != "sha1")

                syms, report = self.check(t, case, text)
                self.assertIn(symbol, syms, f"{case}: {report['symbols']}")
                self.assertEqual(syms[symbol]["score"], score)
                self.assertEqual(report["score"], score)
                detail = syms[symbol].get("detail") or ""
                selector = {"valid": "s2048", "body": "s2048", "header": "s2048",
                            "nokey": "gone", "ed25519": "ed"}.get(case, "s1024")
                self.assertIn(f"d={ZONE} s={selector}", detail)
                if case == "sha1":
                    self.assertIn("DKIM_SHA1", syms)
                    self.assertIn("a=rsa-sha1", detail)
                    self.assertIn("result=policy", detail)
                if case == "ed25519":
                    self.assertIn("a=ed25519-sha256", detail)

                start = len(gw.log_lines())
                self.send(gw, t, case, text)
                result = {"DKIM_VALID": "valid", "DKIM_INVALID": "invalid",
                          "DKIM_NOKEY": "nokey"}[symbol]
                gw.wait_for_log(rf"dkim: result={result} signatures=1 \[d={ZONE} s={selector} ",
                                start=start)
                m = gw.wait_for_log(rf"from=<alice-{t}-{case}@dkim\.test> .*status=accepted "
                                    rf".*score=(-?[0-9.]+)", start=start)
                self.assertAlmostEqual(float(m.group(1)), score)
                util.wait_until(lambda: self.delivered(f"dkim-{case}-{t}") is not None or
                                self.delivered(f"dkim-HEADER-{t}") is not None, 20,
                                what=f"delivery of {case}")

    def test_two_signatures_one_valid_one_invalid(self):
        t = token()
        # s1024 signed with the 2048-bit key: its published key does not match (invalid); then
        # a correct s2048 signature on top.
        first = dkimtool.run([{"op": "sign", "message": message(t, "two"), "domain": ZONE,
                               "selector": "s1024", "key": _read("rsa2048.pem"),
                               "alg": "rsa-sha256", "canon": "relaxed/relaxed"}])[0]
        both = dkimtool.run([{"op": "sign", "message": first, "domain": ZONE,
                              "selector": "s2048", "key": _read("rsa2048.pem"),
                              "alg": "rsa-sha256", "canon": "relaxed/relaxed"}])[0]
        verdict = dkimtool.run([{"op": "verify", "message": both,
                                 "dns_port": self.dns.port}])[0]
        self.assertEqual(verdict, [True, False])
        syms, report = self.check(t, "two", both)
        self.assertEqual(sorted(syms), ["DKIM_INVALID", "DKIM_VALID"], report["symbols"])
        self.assertIn(f"d={ZONE} s=s2048 a=rsa-sha256 bits=2048 result=pass",
                      syms["DKIM_VALID"]["detail"])
        self.assertIn(f"d={ZONE} s=s1024 a=rsa-sha256", syms["DKIM_INVALID"]["detail"])
        self.assertIn("result=fail", syms["DKIM_INVALID"]["detail"])
        self.assertEqual(report["score"], 1.0)

    def test_dns_timeout_is_temperror_and_optionally_tempfailed(self):
        t = token()
        signed = dkimtool.run([{"op": "sign", "message": message(t, "timeout"), "domain": ZONE,
                                "selector": "s2048", "key": _read("rsa2048.pem"),
                                "alg": "rsa-sha256", "canon": "relaxed/relaxed"}])[0]
        silent = SilentServer()
        self.addCleanup(silent.close)
        syms, report = self.check(t, "timeout", signed, dns=silent,
                                  extra=("--dns-timeout-ms", "500"))
        self.assertEqual(sorted(syms), ["DKIM_TEMPERROR"], report["symbols"])
        self.assertIn(f"d={ZONE} s=s2048 a=rsa-sha256 result=temperror",
                      syms["DKIM_TEMPERROR"]["detail"])
        # Through the gateway, with tempfail_on_dns_error: 451, Postfix never sees it.
        self.ctl("policy", "plugin", "set", "dkim", "--settings",
                 json.dumps({"tempfail_on_dns_error": True}))
        gw = self.gateway(dns=silent)
        c = self.connect(gw, timeout=30)
        self.assertEqual(c.cmd("EHLO client.dkim.test").code, 250)
        self.assertEqual(c.cmd(f"MAIL FROM:<alice-{t}@{ZONE}>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        r = c.data(message_data(signed.encode("ascii")), timeout=30)
        self.assertEqual((r.code, r.enhanced), (451, "4.7.5"), r)
        self.assertIn(f"DKIM key lookup failed for d={ZONE} s=s2048", r.text)
        c.quit()
        gw.wait_for_log(r"dkim: result=temperror signatures=1")
        self.assertIsNone(self.delivered(f"dkim-timeout-{t}"))

    def test_reject_invalid_refuses_a_tampered_message(self):
        t = token()
        signed = dkimtool.run([{"op": "sign", "message": message(t, "reject"), "domain": ZONE,
                                "selector": "s2048", "key": _read("rsa2048.pem"),
                                "alg": "rsa-sha256", "canon": "relaxed/relaxed"}])[0]
        tampered = signed.replace("this message is signed", "this message was changed")
        self.assertEqual(dkimtool.run([{"op": "verify", "message": tampered,
                                        "dns_port": self.dns.port}])[0], [False])
        self.ctl("policy", "plugin", "set", "dkim", "--settings",
                 json.dumps({"reject_invalid": True}))
        gw = self.gateway()
        c = self.connect(gw, timeout=30)
        self.assertEqual(c.cmd("EHLO client.dkim.test").code, 250)
        self.assertEqual(c.cmd(f"MAIL FROM:<alice-{t}@{ZONE}>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        r = c.data(message_data(tampered.encode("ascii")), timeout=30)
        self.assertEqual((r.code, r.enhanced), (550, "5.7.20"), r)
        self.assertIn("No passing DKIM signature found", r.text)
        c.quit()
        gw.wait_for_log(r"dkim: result=invalid signatures=1 .*body hash mismatch")
        self.assertIsNone(self.delivered(f"dkim-reject-{t}"))


if __name__ == "__main__":
    unittest.main()
