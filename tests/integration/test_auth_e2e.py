"""Mail authentication end to end: the whole chain spf, dkim, dmarc, authres, dkim_sign in the
real gateway in front of a real Postfix, with a real unbound on loopback serving the test zones,
and every verdict compared with an independent implementation on the same inputs.

Owns issue 4's "Done when": a spoofed sender whose domain publishes SPF -all is refused
(550 5.7.23) and Postfix never sees it; a DMARC p=reject failure (the forger's own envelope
domain passes SPF, nothing aligns with From) is refused at end of data (550 5.7.1); a message
validly signed by python3-dkim arrives with one Authentication-Results field at the top under
our authserv-id — a forged one claiming that id is gone — whose spf=, dkim= and dmarc= results
(read back with python3-authres, an RFC 8601 parser) agree with python3-spf and python3-dkim;
a message whose body changed after signing shows dkim=fail, as python3-dkim says; and mail from
a signing domain sent by a relay-network client leaves signed with the keys `mailgatectl dkim
keygen` made (RSA and ed25519), verified by python3-dkim against the published records.

libspf2 gives loopback clients a free pass, so inbound clients connect from documentation
addresses (192.0.2.25 is auth.test's mail server, 192.0.2.66 a forger with its own domain
forger.test) inside a network namespace of the test process's own (mgtest.netns); outbound
mail comes from 127.0.0.1, the relay network.
"""

import json
import os
import re
import unittest
import uuid

from dnstest import UnboundServer, txt, unbound_binary
from mgtest import authresparse, base, dkimtool, spfverify, util
from mgtest.netns import private_network
from mgtest.policyctl import PolicyCtl, builtin_plugin
from mgtest.smtpclient import message_data

ZONE = "auth.test"
FORGER_ZONE = "forger.test"
SIGN_ZONE = "sign.test"
GOOD_IP = "192.0.2.25"
FORGER_IP = "192.0.2.66"
CLIENT_IPS = (GOOD_IP, FORGER_IP)
AUTHSERV_ID = "mx.mailgate.test"
KEY_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "plugins",
                       "dkim_keys")


def _read(name):
    with open(os.path.join(KEY_DIR, name), encoding="ascii") as f:
        return f.read().strip()


def _published(keygen_output):
    """(owner name, record text) of the DNS record `mailgatectl dkim keygen` printed."""
    m = re.search(r"^(\S+\._domainkey\.\S+) IN TXT \( (.*) \)$", keygen_output, re.M)
    if m is None:
        raise AssertionError(f"no TXT record in keygen's output:\n{keygen_output}")
    return m.group(1), "".join(re.findall(r'"([^"]*)"', m.group(2)))


def _zones(signing_records):
    lines = [
        f'local-zone: "{ZONE}." static',
        f'local-data: "{ZONE}. 3600 IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60"',
        f'local-data: "mail.{ZONE}. 300 IN A {GOOD_IP}"',
        txt(f"{ZONE}.", f"v=spf1 ip4:{GOOD_IP} -all"),
        txt(f"mail.{ZONE}.", f"v=spf1 ip4:{GOOD_IP} -all"),
        txt(f"_dmarc.{ZONE}.", "v=DMARC1; p=reject"),
        txt(f"s2048._domainkey.{ZONE}.", "v=DKIM1; k=rsa; p=" + _read("rsa2048.pub.b64")),
        f'local-zone: "{FORGER_ZONE}." static',
        f'local-data: "{FORGER_ZONE}. 3600 IN SOA ns.{FORGER_ZONE}. h.{FORGER_ZONE}. 1 3600 600 '
        f'86400 60"',
        txt(f"{FORGER_ZONE}.", f"v=spf1 ip4:{FORGER_IP} -all"),
        f'local-zone: "{SIGN_ZONE}." static',
        f'local-data: "{SIGN_ZONE}. 3600 IN SOA ns.{SIGN_ZONE}. h.{SIGN_ZONE}. 1 3600 600 '
        f'86400 60"',
        txt(f"_dmarc.{SIGN_ZONE}.", "v=DMARC1; p=reject"),
    ]
    lines += [txt(name, record) for name, record in signing_records]
    return "\n".join(lines) + "\n"


def token():
    return uuid.uuid4().hex[:12]


def message(t, case, author, extra_headers=""):
    return (f"{extra_headers}"
            f"From: Alice <{author}>\r\n"
            f"To: <{base.USER}>\r\n"
            f"Subject: auth-{case}-{t}\r\n"
            f"Date: Sun, 22 Nov 2026 01:00:00 +0000\r\n"
            f"Message-ID: <{t}.{case}@{ZONE}>\r\n"
            f"\r\n"
            f"Hello,\r\n"
            f"this is the {case} case.\r\n")


def header_fields(msg, name):
    """The values of every field `name` in the header block of `msg` (folding kept)."""
    head = msg.replace("\r\n", "\n").split("\n\n", 1)[0]
    fields = re.findall(r"^([^\s:]+):[ \t]?(.*(?:\n[ \t].*)*)", head, re.M)
    return [value for field, value in fields if field.lower() == name.lower()]


@unittest.skipUnless(unbound_binary(), "unbound(8) is not installed")
@unittest.skipUnless(dkimtool.available(), "python3-dkim is not installed for /usr/bin/python3")
@unittest.skipUnless(spfverify.verifier_available(), "python3-spf is not installed")
@unittest.skipUnless(authresparse.available(), "python3-authres is not installed")
class AuthEndToEndTest(base.PostfixCase):
    @classmethod
    def setUpClass(cls):
        why = private_network(CLIENT_IPS)
        if why is not None:
            raise unittest.SkipTest(f"needs its own network namespace (root): {why}")
        super().setUpClass()
        try:
            cls.dir = util.make_tempdir("mailgate-auth-e2e-")
            cls.ctl = PolicyCtl(os.path.join(cls.dir, "policy.db"))
            cls.ctl.init()
            cls.ctl("policy", "domain", "add", base.DOMAIN)
            cls.ctl("policy", "network", "add", "127.0.0.0/8")
            chain = [("spf", {"receiver": AUTHSERV_ID}),  # fail → 550 5.7.23 (the default)
                     ("dkim", {}),
                     ("dmarc", {}),
                     ("authres", {"authserv_id": AUTHSERV_ID}),
                     ("dkim_sign", {})]
            for name, settings in chain:
                cls.ctl("policy", "plugin", "add", "--name", name, "--path",
                        builtin_plugin(name), "--settings", json.dumps(settings),
                        "--fail-mode", "tempfail", "--timeout-ms", "15000")
            records = [_published(cls.ctl("dkim", "keygen", SIGN_ZONE, "mg-rsa")),
                       _published(cls.ctl("dkim", "keygen", SIGN_ZONE, "mg-ed",
                                          "--algorithm", "ed25519"))]
            cls.dns = UnboundServer(_zones(records)).start()
        except BaseException:
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.dns.close()
            util.remove_tree(cls.dir)
        finally:
            super().tearDownClass()

    def setUp(self):
        self.gw = self.start_gateway(flags=[f"--policy_db={self.ctl.db}",
                                            f"--dns_servers={self.dns.forwarder}",
                                            "--dns_timeout_ms=2000"])
        self.gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 5 plugin instances\)")

    def client(self, source, helo):
        c = self.connect(self.gw, source_address=(source, 0), timeout=30)
        self.assertEqual(c.greeting.code, 220, c.greeting)
        self.assertEqual(c.cmd(f"EHLO {helo}").code, 250)
        return c

    def send(self, source, helo, sender, text):
        """One whole transaction; the reply to the end of data."""
        c = self.client(source, helo)
        self.assertEqual(c.cmd(f"MAIL FROM:<{sender}>").code, 250)
        r = c.cmd(f"RCPT TO:<{base.USER}>")
        self.assertEqual(r.code, 250, r)
        self.assertEqual(c.cmd("DATA").code, 354)
        r = c.data(message_data(text.encode("utf-8")))
        c.quit()
        return r

    def our_results(self, msg):
        """{method: (result, properties)} from our Authentication-Results field, which must be
        the only one claiming our authserv-id and the first of its kind in the header."""
        values = header_fields(msg, "Authentication-Results")
        parsed = authresparse.parse(values)
        ours = [p for p in parsed if p["authserv_id"].lower() == AUTHSERV_ID]
        self.assertEqual(len(ours), 1, values)
        self.assertEqual(parsed[0]["authserv_id"].lower(), AUTHSERV_ID,
                         f"our field is not the first Authentication-Results: {values}")
        return {r["method"]: (r["result"], r["properties"]) for r in ours[0]["results"]}

    def test_spoofed_sender_with_spf_fail_is_rejected(self):
        t = token()
        sender = f"ceo-{t}@{ZONE}"
        helo = f"mail.{FORGER_ZONE}"
        self.assertEqual(spfverify.verify(self.dns.port, [(FORGER_IP, sender, helo)]), ["fail"])
        c = self.client(FORGER_IP, helo)
        self.assertEqual(c.cmd(f"MAIL FROM:<{sender}>").code, 250)
        r = c.cmd(f"RCPT TO:<{base.USER}>")
        self.assertEqual((r.code, r.enhanced), (550, "5.7.23"), r)
        c.quit()
        self.assertNotIn(t, self.postfix.maillog(), "the spoofed message reached Postfix")

    def test_dmarc_reject_failure_is_rejected_at_end_of_data(self):
        t = token()
        # The envelope is the forger's own domain (SPF pass there); From claims auth.test.
        sender = f"bounce-{t}@{FORGER_ZONE}"
        self.assertEqual(spfverify.verify(self.dns.port, [(FORGER_IP, sender, "x")]), ["pass"])
        r = self.send(FORGER_IP, f"mail.{FORGER_ZONE}", sender,
                      message(t, "dmarc", f"ceo@{ZONE}"))
        self.assertEqual((r.code, r.enhanced), (550, "5.7.1"), r)
        self.assertIn(ZONE, r.text)
        self.assertNotIn(t, self.postfix.maillog(), "the DMARC failure reached Postfix")

    def test_signed_message_arrives_with_results_agreeing_with_independent_verifiers(self):
        t = token()
        sender = f"alice-{t}@{ZONE}"
        helo = f"mail.{ZONE}"
        forged = f"Authentication-Results: {AUTHSERV_ID.upper()}; dkim=pass header.d=bank.test\r\n"
        signed = dkimtool.run([{"op": "sign", "message": message(t, "signed", sender),
                                "domain": ZONE, "selector": "s2048", "key": _read("rsa2048.pem"),
                                "alg": "rsa-sha256", "canon": "relaxed/relaxed"}])[0]
        signed = forged + signed  # added in transit, above the signature: it does not break it
        independent_dkim = dkimtool.run([{"op": "verify", "message": signed,
                                          "dns_port": self.dns.port}])[0]
        independent_spf = spfverify.verify(self.dns.port, [(GOOD_IP, sender, helo)])[0]
        self.assertEqual((independent_dkim, independent_spf), ([True], "pass"))

        r = self.send(GOOD_IP, helo, sender, signed)
        self.assertEqual(r.code, 250, r)
        msg = self.wait_delivered(f"auth-signed-{t}")
        self.assertNotIn("bank.test", msg, "the forged Authentication-Results survived")
        results = self.our_results(msg)
        self.assertEqual(results["spf"], (independent_spf, {"smtp.mailfrom": sender}))
        dkim_result, dkim_props = results["dkim"]
        self.assertEqual(dkim_result, "pass" if independent_dkim[0] else "fail")
        self.assertEqual((dkim_props["header.d"], dkim_props["header.s"],
                          dkim_props["header.a"]), (ZONE, "s2048", "rsa-sha256"))
        signature = header_fields(signed, "DKIM-Signature")[0]
        b_value = re.sub(r"\s", "", re.search(r"\bb=([^;]*)", signature).group(1))
        self.assertEqual(dkim_props["header.b"], b_value[:8])
        # DMARC by hand from the independent verdicts: SPF and DKIM both pass for auth.test,
        # the From domain, so both align and the policy is met.
        self.assertEqual(results["dmarc"][0], "pass")
        self.assertEqual(results["dmarc"][1]["header.from"], ZONE)
        # The signature still verifies after the gateway's header edits.
        self.assertEqual(dkimtool.run([{"op": "verify", "message": msg,
                                        "dns_port": self.dns.port}])[0], [True])

    def test_body_changed_after_signing_is_dkim_fail_as_python3_dkim_says(self):
        t = token()
        sender = f"alice-{t}@{ZONE}"
        signed = dkimtool.run([{"op": "sign", "message": message(t, "tampered", sender),
                                "domain": ZONE, "selector": "s2048", "key": _read("rsa2048.pem"),
                                "alg": "rsa-sha256", "canon": "relaxed/relaxed"}])[0]
        tampered = signed.replace("this is the tampered case.", "send the money to IBAN X.")
        self.assertEqual(dkimtool.run([{"op": "verify", "message": tampered,
                                        "dns_port": self.dns.port}])[0], [False])
        r = self.send(GOOD_IP, f"mail.{ZONE}", sender, tampered)
        self.assertEqual(r.code, 250, r)  # SPF passes and aligns: DMARC passes
        results = self.our_results(self.wait_delivered(f"auth-tampered-{t}"))
        self.assertEqual(results["dkim"][0], "fail")
        self.assertEqual((results["spf"][0], results["dmarc"][0]), ("pass", "pass"))

    def test_mail_from_a_signing_domain_leaves_signed(self):
        t = token()
        r = self.send("127.0.0.1", "laptop.sign.test", f"news-{t}@{SIGN_ZONE}",
                      message(t, "outbound", f"news@{SIGN_ZONE}"))
        self.assertEqual(r.code, 250, r)
        msg = self.wait_delivered(f"auth-outbound-{t}")
        signatures = header_fields(msg, "DKIM-Signature")
        self.assertEqual(len(signatures), 2, msg[:3000])
        algorithms = sorted(re.search(r"\ba=([\w-]+)", s).group(1) for s in signatures)
        self.assertEqual(algorithms, ["ed25519-sha256", "rsa-sha256"])
        for s in signatures:
            self.assertRegex(s, rf"\bd={re.escape(SIGN_ZONE)};")
            self.assertRegex(s, r"\bc=relaxed/relaxed;")
        self.assertEqual(dkimtool.run([{"op": "verify", "message": msg,
                                        "dns_port": self.dns.port}])[0], [True, True])


if __name__ == "__main__":
    unittest.main()
