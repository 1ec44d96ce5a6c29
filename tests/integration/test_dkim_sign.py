"""The `dkim_sign` plugin (plugins/dkim/sign.cc) in the real gateway, in front of a real Postfix,
with keys made by `mailgatectl dkim keygen` and a real unbound on loopback serving the TXT
records keygen printed.

Owns: keygen's output (the record's exact shape, 255-byte strings, the public key matching the
stored private key), its refusals (existing selector without --force, RSA under 1024 bits), `dkim
list`/`record`/`disable`; then mail from a relay-network client (127.0.0.1) with a From: in the
signing domain leaves the gateway with an RSA and an ed25519 signature that python3-dkim
(mgtest.dkimtool, asking the same unbound) verifies in the message Postfix delivered, for
relaxed/relaxed and simple/simple; a client outside relay_networks (127.0.0.2) and a From:
domain without keys get no signature; a disabled key is not used.
"""

import base64
import os
import re
import unittest
import uuid

from dnstest import UnboundServer, unbound_binary
from mgtest import base, dkimtool, util
from mgtest.policyctl import PolicyCtl, builtin_plugin, log_mark, wait_policy_applied
from mgtest.smtpclient import message_data

ZONE = "sign.test"
RECORD_RE = re.compile(r'^(\S+)\. IN TXT \( ((?:"[^"]*" ?)+)\)$')


def parse_record(line):
    """(name, [strings]) of a record line printed by keygen; fails on any other shape."""
    m = RECORD_RE.match(line)
    if not m:
        raise AssertionError(f"not a TXT record line: {line!r}")
    return m.group(1), re.findall(r'"([^"]*)"', m.group(2))


def zones(records):
    lines = [f'local-zone: "{ZONE}." static',
             f'local-data: "{ZONE}. 3600 IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60"']
    for name, strings in records:
        quoted = " ".join(f'"{s}"' for s in strings)
        lines.append(f"local-data: '{name}. 300 IN TXT {quoted}'")
    return "\n".join(lines) + "\n"


def token():
    return uuid.uuid4().hex[:12]


def message(t, case, sender=f"alice@{ZONE}"):
    return (f"From: Alice <{sender}>\r\n"
            f"To: <{base.USER}>\r\n"
            f"Subject:  sign-{case}-{t}\r\n"
            f"Date: Sun, 22 Nov 2026 01:00:00 +0000\r\n"
            f"Message-ID: <{t}.{case}@{ZONE}>\r\n"
            f"\r\n"
            f"Hello,\r\n"
            f"  this   message leaves signed ({case}).\r\n")


@unittest.skipUnless(unbound_binary(), "unbound(8) is not installed")
@unittest.skipUnless(dkimtool.available(), "python3-dkim is not installed for /usr/bin/python3")
class DkimSignGatewayTest(base.PostfixCase):
    def setUp(self):
        self.plugin = builtin_plugin("dkim_sign")  # a clear error when it was not built
        d = util.make_tempdir("mailgate-dkim-sign-")
        self.addCleanup(util.remove_tree, d)
        self.ctl = PolicyCtl(os.path.join(d, "policy.db"))
        self.ctl.init()
        self.ctl("policy", "domain", "add", base.DOMAIN)
        self.ctl("policy", "network", "add", "127.0.0.1/32")
        self.ctl("policy", "plugin", "add", "--name", "dkim_sign", "--path", self.plugin,
                 "--settings", "{}", "--fail-mode", "open", "--timeout-ms", "15000")

    def keygen(self, *args):
        out = self.ctl("dkim", "keygen", ZONE, *args)
        lines = out.strip().split("\n")
        self.assertEqual(len(lines), 2, out)
        self.assertTrue(lines[0].endswith("; publish this DNS record:"), out)
        return parse_record(lines[1])

    def start_dns(self, records):
        dns = UnboundServer(zones(records)).start()
        self.addCleanup(dns.close)
        return dns

    def gateway(self, dns):
        gw = self.start_gateway(flags=[f"--policy_db={self.ctl.db}", "--policy_poll_ms=100",
                                       f"--dns_servers={dns.forwarder}", "--dns_timeout_ms=2000"])
        gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 1 plugin instances\)")
        return gw

    def send(self, gw, text, source="127.0.0.1", sender=f"alice@{ZONE}"):
        c = self.connect(gw, timeout=30, source_address=(source, 0))
        self.assertEqual(c.greeting.code, 220, c.greeting)
        self.assertEqual(c.cmd("EHLO client.sign.test").code, 250)
        self.assertEqual(c.cmd(f"MAIL FROM:<{sender}>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        r = c.data(message_data(text.encode("ascii")), timeout=30)
        self.assertEqual(r.code, 250, r)
        c.quit()

    def delivered(self, subject):
        """The delivered message whose Subject: is `subject`, as bytes with CRLF line ends
        (Postfix's mailbox has LF; waits for the message)."""
        found = []

        def look():
            for m in self.postfix.messages(base.USER):
                crlf = m.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
                if f"\r\nSubject:  {subject}\r\n".encode() in crlf:
                    found.append(crlf)
                    return True
            return False

        util.wait_until(look, 20, what=f"delivery of {subject}")
        return found[0]

    @staticmethod
    def signatures(raw):
        """The DKIM-Signature fields of a message (bytes), unfolded, top first."""
        head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("ascii")
        fields = re.split(r"\n(?![ \t])", head)
        return [re.sub(r"\s+", " ", f) for f in fields if f.lower().startswith("dkim-signature:")]

    def verify(self, raw, dns):
        return dkimtool.run([{"op": "verify", "message": raw.decode("ascii"),
                              "dns_port": dns.port}])[0]

    # --- keygen --------------------------------------------------------------------------

    def test_keygen_prints_the_record_and_refuses_what_it_should(self):
        name, strings = self.keygen("rsa1", "--bits", "2048", "--comment", "test key")
        self.assertEqual(name, f"rsa1._domainkey.{ZONE}")
        self.assertEqual(len(strings), 2)  # a 2048-bit key does not fit one string
        self.assertEqual(len(strings[0]), 255)
        value = "".join(strings)
        self.assertTrue(value.startswith("v=DKIM1; k=rsa; p="), value)
        der = base64.b64decode(value.split("p=", 1)[1], validate=True)
        self.assertEqual(der[0], 0x30)  # SubjectPublicKeyInfo
        self.assertGreater(len(der), 256)

        name, strings = self.keygen("ED1", "--algorithm", "ed25519")
        self.assertEqual(name, f"ed1._domainkey.{ZONE}")
        self.assertEqual(len(strings), 1)
        self.assertTrue(strings[0].startswith("v=DKIM1; k=ed25519; p="), strings)
        self.assertEqual(len(base64.b64decode(strings[0].split("p=", 1)[1], validate=True)), 32)

        # `record` prints the same line again from the stored private key.
        self.assertEqual(parse_record(self.ctl("dkim", "record", ZONE, "ed1").strip()),
                         (f"ed1._domainkey.{ZONE}", strings))

        p = self.ctl.run("dkim", "keygen", ZONE, "ed1", "--algorithm", "ed25519")
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"DKIM key 'ed1' for {ZONE} already exists", p.stderr)
        p = self.ctl.run("dkim", "keygen", ZONE, "weak", "--bits", "512")
        self.assertEqual(p.returncode, 1)
        self.assertIn("--bits: must be 1024..4096 (RFC 8301; got 512)", p.stderr)
        p = self.ctl.run("dkim", "keygen", ZONE, "bad selector")
        self.assertEqual(p.returncode, 1)
        self.assertIn("SELECTOR: 'bad selector' is not a valid DKIM selector", p.stderr)

        replaced = self.ctl("dkim", "keygen", ZONE, "ed1", "--algorithm", "ed25519", "--force")
        self.assertTrue(replaced.startswith(f"replaced DKIM key 'ed1' for {ZONE}"), replaced)
        self.assertNotEqual(parse_record(replaced.strip().split("\n")[1])[1], strings)

        listing = self.ctl("dkim", "list")
        self.assertRegex(listing, rf"{ZONE}\s+ed1\s+ed25519-sha256\s+yes\s+")
        self.assertRegex(listing, rf"{ZONE}\s+rsa1\s+rsa-sha256\s+yes\s+\S+\s+test key")
        self.assertNotIn("PRIVATE", listing)

    # --- signing through the gateway ---------------------------------------------------------

    def test_mail_from_a_relay_client_leaves_signed_with_rsa_and_ed25519(self):
        records = [self.keygen("rsa1"), self.keygen("ed1", "--algorithm", "ed25519")]
        dns = self.start_dns(records)
        gw = self.gateway(dns)
        t = token()

        start = log_mark(gw)
        self.send(gw, message(t, "relay"))
        raw = self.delivered(f"sign-relay-{t}")
        sigs = self.signatures(raw)
        self.assertEqual(len(sigs), 2, raw)
        self.assertEqual(sorted(re.search(r"a=([a-z0-9-]+);", s).group(1) for s in sigs),
                         ["ed25519-sha256", "rsa-sha256"])
        for s in sigs:
            self.assertIn(f"d={ZONE};", s)
            self.assertIn("c=relaxed/relaxed;", s)
        self.assertEqual(self.verify(raw, dns), [True, True])
        for sel, alg in (("ed1", "ed25519-sha256"), ("rsa1", "rsa-sha256")):
            gw.wait_for_log(rf"dkim_sign: signed d={ZONE} s={sel} a={alg} c=relaxed/relaxed "
                            rf"\(relay network 127\.0\.0\.1/32\)", start=start)

        # The verifier can say no: the delivered message with its body changed fails.
        tampered = raw.replace(b"leaves signed", b"leaves SIGNED")
        self.assertNotEqual(tampered, raw)
        self.assertEqual(self.verify(tampered, dns), [False, False])

        # A client outside relay_networks (and not authenticated): no signature.
        self.send(gw, message(t, "outsider"), source="127.0.0.2")
        raw = self.delivered(f"sign-outsider-{t}")
        self.assertEqual(self.signatures(raw), [])

        # A From: domain without keys: no signature, and a log line saying why.
        start = log_mark(gw)
        self.send(gw, message(t, "nokey", sender="bob@other.test"), sender="bob@other.test")
        raw = self.delivered(f"sign-nokey-{t}")
        self.assertEqual(self.signatures(raw), [])
        gw.wait_for_log(r"dkim_sign: not signing: no enabled key for other\.test", start=start)

    def test_simple_canonicalization_and_a_disabled_key(self):
        records = [self.keygen("rsa1"), self.keygen("ed1", "--algorithm", "ed25519")]
        self.ctl("dkim", "disable", ZONE, "rsa1")
        self.ctl("policy", "plugin", "set", "dkim_sign", "--settings",
                 '{"canonicalization": "simple/simple"}')
        dns = self.start_dns(records)
        gw = self.gateway(dns)
        t = token()
        self.send(gw, message(t, "simple"))
        raw = self.delivered(f"sign-simple-{t}")
        sigs = self.signatures(raw)
        self.assertEqual(len(sigs), 1, raw)
        self.assertIn("a=ed25519-sha256;", sigs[0])
        self.assertIn("c=simple/simple;", sigs[0])
        self.assertIn("s=ed1;", sigs[0])
        self.assertEqual(self.verify(raw, dns), [True])

        # Enabled again: the next message gets both, picked up without a restart.
        mark = log_mark(gw)
        self.ctl("dkim", "enable", ZONE, "rsa1")
        wait_policy_applied(gw, mark)
        self.send(gw, message(t, "simple2"))
        raw = self.delivered(f"sign-simple2-{t}")
        self.assertEqual(len(self.signatures(raw)), 2, raw)
        self.assertEqual(self.verify(raw, dns), [True, True])


if __name__ == "__main__":
    unittest.main()
