"""Submission through the gateway: listener profiles, AUTH PLAIN and LOGIN checked by a real
Postfix with Cyrus SASL (sasldb), the login passed on with XCLIENT LOGIN (or on the
authenticated connection itself when XCLIENT is off), and a per-profile plugin chain.

Owns issue 8 items 2-3 and their "Done when": a mail client (swaks, smtplib) submits on the
submission listener with STARTTLS and AUTH, or on smtps with implicit TLS, and its mail leaves
DKIM-signed by dkim_sign — a plugin row for the submission profile only — verified by
python3-dkim, and relayed to a domain the backend does not serve; the same client on the
inbound listener is neither signed (though in relay_networks) nor allowed to relay.
Also: submission refuses MAIL before AUTH (530 5.7.0) and AUTH before TLS (538 5.7.11); a wrong
password gets 535 5.7.8 and, after --auth_max_failures of them, AUTH gets 421 4.7.0 for that
client only; no password reaches the gateway's log. Issue 5: a rate limit of N recipients per
authenticated user holds exactly (N accepted, the next 451 4.7.1), another user unaffected.

Postfix trusts no client network here (mynetworks is an unused address), so relaying depends on
permit_sasl_authenticated alone: the backend decides.
"""

import base64
import os
import smtplib
import ssl
import subprocess
import unittest
import uuid

import test_dkim_sign as dks
from dnstest import UnboundServer, unbound_binary
from mgtest import base, dkimtool, sasl, sdk, tlscert, util
from mgtest.policyctl import PolicyCtl, builtin_plugin, log_mark
from mgtest.postfix import PostfixInstance
from mgtest.smtpclient import RawSmtp

ITEMS_C = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins",
                       "session_items.c")
SDK_INCLUDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk",
                           "include")
PASSWORDS = {"alice": "alice-Secret-1", "bob": "bob-Secret-2",
             "carol": "long-" + "x9" * 350}  # an AUTH PLAIN line of ~960 octets
OUTSIDE = "someone@elsewhere.example"
GATEWAY_NAME = "gateway.mailgate.test"


def b64(text):
    return base64.b64encode(text.encode()).decode()


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def header_values(raw, name):
    head = raw.split("\n\n", 1)[0]
    out = []
    for field in head.replace("\n\t", " ").replace("\n ", " ").split("\n"):
        if field.lower().startswith(name.lower() + ":"):
            out.append(field.split(":", 1)[1].strip())
    return out


@unittest.skipUnless(sasl.available(), "Cyrus SASL (sasl2-bin, libsasl2-modules) not installed")
class SubmissionTest(base.PostfixCase):
    @classmethod
    def setUpClass(cls):
        # As base.PostfixCase.setUpClass, with Cyrus SASL files written before Postfix starts.
        base.require_binary()
        cls.tmpdir = util.make_tempdir()
        cls.postfix = PostfixInstance(os.path.join(cls.tmpdir, "postfix"), users=base.USERS)
        try:
            cls.postfix.extra_main.update(sasl.postfix_settings(
                os.path.join(cls.tmpdir, "sasl"), base.DOMAIN, PASSWORDS,
                cls.postfix.config_dir))
            cls.postfix.extra_main.update({
                "mynetworks": "127.0.0.254/32",
                "smtpd_relay_restrictions":
                    "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
                "smtpd_sasl_authenticated_header": "yes",
                # Relayed mail is accepted and dropped at Postfix's edge (logged "status=sent").
                "default_transport": "discard:relayed outside",
                "relay_transport": "discard:relayed outside",
            })
            cls.postfix.start()
            certs = os.path.join(cls.tmpdir, "certs")
            cls.cert = tlscert.self_signed(certs, GATEWAY_NAME)
            cls.items_so = sdk.compile_c_plugin(ITEMS_C, os.path.join(cls.tmpdir, "items.so"),
                                                SDK_INCLUDE)
        except BaseException:
            cls.postfix.stop()
            util.remove_tree(cls.tmpdir)
            raise

    # ------------------------------------------------------------------ helpers
    def policy(self):
        d = util.make_tempdir("mailgate-submission-")
        self.addCleanup(util.remove_tree, d)
        ctl = PolicyCtl(os.path.join(d, "policy.db"))
        ctl.init()
        ctl("policy", "domain", "add", base.DOMAIN)
        ctl("policy", "plugin", "add", "--name", "session_items", "--path", self.items_so)
        return ctl

    def start(self, ctl=None, extra=()):
        ctl = ctl or self.policy()
        flags = [f"--policy_db={ctl.db}", f"--tls_cert={self.cert[0]}",
                 f"--tls_key={self.cert[1]}", "--auth_max_failures=3",
                 "--auth_failure_window=300", *extra]
        gw = self.start_gateway(
            flags=flags, listen="127.0.0.1:0=inbound,127.0.0.1:0=submission,127.0.0.1:0=smtps")
        util.wait_until(lambda: len(gw.listeners) == 3, 10, what="three listeners")
        self.inbound, self.submission, self.smtps = (p for _, p in gw.listeners)
        return gw

    def tls_session(self, gw, port=None, source="127.0.0.1"):
        c = RawSmtp(gw.host, port or self.submission, source_address=(source, 0))
        self.addCleanup(c.close)
        self.assertEqual(c.cmd("EHLO client.example.org").code, 250)
        self.assertEqual(c.cmd("STARTTLS").code, 220)
        c.start_tls(client_context())
        r = c.cmd("EHLO client.example.org")
        self.assertEqual(r.ehlo_params("AUTH"), ["PLAIN", "LOGIN"])
        return c

    def message(self, subject, sender, rcpts):
        return (f"From: <{sender}>\r\nTo: {', '.join(f'<{r}>' for r in rcpts)}\r\n"
                f"Subject: {subject}\r\nMessage-ID: <{uuid.uuid4()}@example.org>\r\n\r\n"
                f"submitted {subject}\r\n").encode()

    # ------------------------------------------------------------------ tests
    def test_submission_needs_tls_then_auth(self):
        gw = self.start()
        c = RawSmtp(gw.host, self.submission)
        self.addCleanup(c.close)
        r = c.cmd("EHLO client.example.org")
        self.assertIn("STARTTLS", r.keywords())
        self.assertNotIn("AUTH", r.keywords())  # never offered in plaintext
        r = c.cmd(f"AUTH PLAIN {b64(chr(0) + 'alice' + chr(0) + PASSWORDS['alice'])}")
        self.assertEqual((r.code, r.enhanced), (538, "5.7.11"))
        r = c.cmd("MAIL FROM:<alice@example.test>")
        self.assertEqual((r.code, r.enhanced), (530, "5.7.0"))
        self.assertEqual(c.cmd("STARTTLS").code, 220)
        c.start_tls(client_context())
        r = c.cmd("EHLO client.example.org")
        self.assertEqual(r.ehlo_params("AUTH"), ["PLAIN", "LOGIN"])
        self.assertNotIn("STARTTLS", r.keywords())
        r = c.cmd("MAIL FROM:<alice@example.test>")
        self.assertEqual((r.code, r.enhanced), (530, "5.7.0"))  # TLS alone is not enough
        r = c.cmd("AUTH CRAM-MD5")
        self.assertEqual((r.code, r.enhanced), (504, "5.5.4"))
        # The inbound listener offers no AUTH at all, with or without TLS.
        i = self.tls_session_inbound(gw)
        r = i.cmd("AUTH PLAIN AGFsaWNlAHg=")
        self.assertEqual((r.code, r.enhanced), (503, "5.5.1"))

    def tls_session_inbound(self, gw):
        c = RawSmtp(gw.host, self.inbound)
        self.addCleanup(c.close)
        c.cmd("EHLO client.example.org")
        self.assertEqual(c.cmd("STARTTLS").code, 220)
        c.start_tls(client_context())
        r = c.cmd("EHLO client.example.org")
        self.assertNotIn("AUTH", r.keywords())
        return c

    def test_auth_plain_and_login_checked_by_postfix_and_relayed(self):
        gw = self.start()
        mark = log_mark(gw)
        # PLAIN through smtplib (STARTTLS, login), relaying to a domain Postfix does not serve.
        subject = f"plain {uuid.uuid4()}"
        with smtplib.SMTP(gw.host, self.submission, timeout=30,
                          local_hostname="client.example.org") as s:
            s.starttls(context=client_context())
            code, _ = s.login("alice", PASSWORDS["alice"])
            self.assertEqual(code, 235)
            refused = s.sendmail("alice@example.test", [base.USER, OUTSIDE],
                                 self.message(subject, "alice@example.test", [base.USER, OUTSIDE]))
            self.assertEqual(refused, {})
        raw = self.wait_delivered(subject)
        self.assertEqual(header_values(raw, "X-Session-Items")[0].split("; ")[:2],
                         ["profile=submission", "protocol=ESMTPSA"])
        self.assertTrue(header_values(raw, "X-Session-Items")[0].endswith("auth_user=alice"))
        ours = [r for r in header_values(raw, "Received") if f"by {GATEWAY_NAME}" in r]
        self.assertRegex(ours[0], r"with ESMTPSA \(TLSv1\.3:TLS_[A-Z0-9_]+:\d+\)")
        # Postfix took the login from XCLIENT LOGIN (its own Received names the sender).
        self.assertTrue(any("Authenticated sender: alice" in r
                            for r in header_values(raw, "Received")), raw)
        util.wait_until(lambda: f"to=<{OUTSIDE}>, relay=none" in self.postfix.maillog(), 20,
                        what="Postfix relaying to the outside recipient")

        # LOGIN by hand, then a second transaction in the same session.
        c = self.tls_session(gw)
        self.assertEqual(c.cmd("AUTH LOGIN").wire, "334 VXNlcm5hbWU6")
        self.assertEqual(c.cmd(b64("bob")).wire, "334 UGFzc3dvcmQ6")
        r = c.cmd(b64(PASSWORDS["bob"]))
        self.assertEqual((r.code, r.enhanced), (235, "2.7.0"))
        r = c.cmd("AUTH PLAIN =")
        self.assertEqual((r.code, r.enhanced), (503, "5.5.1"))  # already authenticated
        for n in range(2):
            self.assertEqual(c.cmd("MAIL FROM:<bob@example.test>").code, 250)
            self.assertEqual(c.cmd(f"RCPT TO:<{OUTSIDE}>").code, 250)
            self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
            self.assertEqual(c.cmd("DATA").code, 354)
            subject = f"login {n} {uuid.uuid4()}"
            r = c.data(self.message(subject, "bob@example.test", [base.USER]) + b".\r\n")
            self.assertEqual(r.code, 250, r)
            raw = self.wait_delivered(subject)
            self.assertTrue(header_values(raw, "X-Session-Items")[0].endswith("auth_user=bob"))
        c.quit()
        gw.wait_for_log(r"AUTH PLAIN ok from unknown\[127\.0\.0\.1\]: user=<alice>", start=mark)
        gw.wait_for_log(r"AUTH LOGIN ok from unknown\[127\.0\.0\.1\]: user=<bob>", start=mark)

        # Without AUTH (the inbound listener) the backend refuses to relay.
        i = self.tls_session_inbound(gw)
        self.assertEqual(i.cmd("MAIL FROM:<alice@example.test>").code, 250)
        r = i.cmd(f"RCPT TO:<{OUTSIDE}>")
        self.assertEqual((r.code, r.enhanced), (554, "5.7.1"), r)

    def test_long_auth_line_accepted_other_long_commands_not(self):
        gw = self.start()
        c = self.tls_session(gw)
        line = f"AUTH PLAIN {b64(chr(0) + 'carol' + chr(0) + PASSWORDS['carol'])}"
        self.assertGreater(len(line), 900)
        self.assertEqual(c.cmd(line).code, 235)  # RFC 4954 allows up to 12288 octets
        r = c.cmd("NOOP " + "x" * 600)
        self.assertEqual((r.code, r.enhanced), (500, "5.5.2"))  # others keep the 512 limit
        self.assertEqual(c.cmd("MAIL FROM:<carol@example.test>").code, 250)
        c.quit()

    def test_wrong_password_throttled_per_client_and_never_logged(self):
        gw = self.start(extra=["--log_level=debug"])
        wrong = "Wrong-Password-77"
        c = self.tls_session(gw, source="127.0.0.3")
        for _ in range(3):
            r = c.cmd(f"AUTH PLAIN {b64(chr(0) + 'alice' + chr(0) + wrong)}")
            self.assertEqual((r.code, r.enhanced), (535, "5.7.8"))
        r = c.cmd(f"AUTH PLAIN {b64(chr(0) + 'alice' + chr(0) + PASSWORDS['alice'])}")
        self.assertEqual((r.code, r.enhanced), (421, "4.7.0"))
        self.assertTrue(c.wait_closed())
        # A new connection from the same client is refused too; another client is not.
        c = self.tls_session(gw, source="127.0.0.3")
        self.assertEqual(c.cmd("AUTH LOGIN").code, 421)
        c = self.tls_session(gw, source="127.0.0.4")
        r = c.cmd(f"AUTH PLAIN {b64(chr(0) + 'alice' + chr(0) + PASSWORDS['alice'])}")
        self.assertEqual(r.code, 235)
        c.quit()
        # Neither password (nor its base64) ever reaches the log, even at debug level.
        log = gw.log_text()
        for secret in (wrong, PASSWORDS["alice"], b64(chr(0) + "alice" + chr(0) + wrong),
                       b64(chr(0) + "alice" + chr(0) + PASSWORDS["alice"])):
            self.assertNotIn(secret, log)
        self.assertIn("AUTH data", log)  # the debug log shows where it was hidden

    def test_swaks_starttls_and_implicit_tls_with_auth(self):
        gw = self.start()
        for how, port, mech, user in (("--tls", self.submission, "LOGIN", "bob"),
                                      ("--tlsc", self.smtps, "PLAIN", "alice")):
            subject = f"swaks {how} {uuid.uuid4()}"
            p = subprocess.run(
                ["swaks", "--server", gw.host, "--port", str(port), how, "--auth", mech,
                 "--auth-user", user, "--auth-password", PASSWORDS[user],
                 "--from", f"{user}@example.test", "--to", f"{base.USER},{OUTSIDE}",
                 "--helo", "swaks.example.org", "--header", f"Subject: {subject}",
                 "--body", "sent by swaks"],
                capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("235 2.7.0", p.stdout)
            raw = self.wait_delivered(subject)
            self.assertTrue(header_values(raw, "X-Session-Items")[0].endswith(f"auth_user={user}"))

    def test_without_xclient_the_authenticated_connection_carries_the_mail(self):
        gw = self.start(extra=["--xclient=false", "--xforward=false"])
        c = self.tls_session(gw)
        r = c.cmd(f"AUTH PLAIN {b64(chr(0) + 'alice' + chr(0) + PASSWORDS['alice'])}")
        self.assertEqual(r.code, 235)
        for n in range(2):
            self.assertEqual(c.cmd("MAIL FROM:<alice@example.test>").code, 250)
            r = c.cmd(f"RCPT TO:<{OUTSIDE}>")
            self.assertEqual(r.code, 250, r)  # relaying allowed: Postfix saw the AUTH itself
            self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
            self.assertEqual(c.cmd("DATA").code, 354)
            subject = f"pinned {n} {uuid.uuid4()}"
            r = c.data(self.message(subject, "alice@example.test", [base.USER]) + b".\r\n")
            self.assertEqual(r.code, 250, r)
            self.wait_delivered(subject)
        c.quit()

    def test_ratelimit_recipients_per_authenticated_user(self):
        builtin_plugin("ratelimit")
        ctl = self.policy()
        ctl("policy", "plugin", "add", "--name", "ratelimit", "--path", "ratelimit.so")
        # 3 recipients an hour per user: no refill (one more every 20 min) during the test.
        ctl("policy", "ratelimit", "add", "auth-rcpt", "--what", "recipients", "--key",
            "auth_user", "--rate", "3", "--period", "3600", "--action", "tempfail")
        gw = self.start(ctl)
        sessions = {}
        for user in ("alice", "bob"):
            c = self.tls_session(gw)
            r = c.cmd(f"AUTH PLAIN {b64(chr(0) + user + chr(0) + PASSWORDS[user])}")
            self.assertEqual(r.code, 235)
            sessions[user] = c
        a = sessions["alice"]
        self.assertEqual(a.cmd("MAIL FROM:<alice@example.test>").code, 250)
        for rcpt in ("user", "other", "alice"):
            self.assertEqual(a.cmd(f"RCPT TO:<{rcpt}@example.test>").code, 250)
        r = a.cmd("RCPT TO:<bob@example.test>")
        self.assertEqual((r.code, r.enhanced), (451, "4.7.1"), r)
        # A new transaction or session does not reset alice's count; bob has his own.
        self.assertEqual(a.cmd("RSET").code, 250)
        self.assertEqual(a.cmd("MAIL FROM:<alice@example.test>").code, 250)
        self.assertEqual(a.cmd("RCPT TO:<user@example.test>").code, 451)
        b = sessions["bob"]
        self.assertEqual(b.cmd("MAIL FROM:<bob@example.test>").code, 250)
        for rcpt in ("user", "other", "alice"):
            self.assertEqual(b.cmd(f"RCPT TO:<{rcpt}@example.test>").code, 250)
        self.assertEqual(b.cmd("RCPT TO:<bob@example.test>").code, 451)

    @unittest.skipUnless(unbound_binary(), "unbound(8) is not installed")
    @unittest.skipUnless(dkimtool.available(), "python3-dkim is not installed")
    def test_dkim_sign_on_the_submission_profile_only(self):
        ctl = self.policy()
        ctl("policy", "network", "add", "127.0.0.0/8")  # inbound clients here are "relay" too
        ctl("policy", "plugin", "add", "--name", "dkim_sign", "--path",
            builtin_plugin("dkim_sign"), "--profile", "submission", "--settings", "{}",
            "--fail-mode", "open", "--timeout-ms", "15000")
        out = ctl("dkim", "keygen", dks.ZONE, "rsa1").strip().split("\n")
        dns = UnboundServer(dks.zones([dks.parse_record(out[1])])).start()
        self.addCleanup(dns.close)
        gw = self.start(ctl, extra=[f"--dns_servers={dns.forwarder}", "--dns_timeout_ms=2000"])
        sender = f"alice@{dks.ZONE}"

        # The mail client: STARTTLS + AUTH on submission; signed, verified, relayed outside.
        subject = f"signed {uuid.uuid4()}"
        with smtplib.SMTP(gw.host, self.submission, timeout=30,
                          local_hostname="client.example.org") as s:
            s.starttls(context=client_context())
            s.login("alice", PASSWORDS["alice"])
            self.assertEqual(s.sendmail(sender, [base.USER, OUTSIDE],
                                        self.message(subject, sender, [base.USER])), {})
        raw = self.wait_delivered(subject)
        crlf = raw.replace("\n", "\r\n").encode()
        sigs = dks.DkimSignGatewayTest.signatures(crlf)
        self.assertEqual(len(sigs), 1, raw)
        self.assertIn(f"d={dks.ZONE};", sigs[0])
        self.assertEqual(dkimtool.run([{"op": "verify", "message": crlf.decode(),
                                        "dns_port": dns.port}])[0], [True])
        gw.wait_for_log(rf"dkim_sign: signed d={dks.ZONE} s=rsa1 .*\(authenticated as alice\)")

        # Inbound: the same From and a relay-network client, but no dkim_sign in its chain.
        subject = f"unsigned {uuid.uuid4()}"
        with smtplib.SMTP(gw.host, self.inbound, timeout=30) as s:
            s.sendmail(sender, [base.USER], self.message(subject, sender, [base.USER]))
        raw = self.wait_delivered(subject)
        self.assertNotIn("DKIM-Signature", raw)
        self.assertIn("profile=inbound", header_values(raw, "X-Session-Items")[0])


if __name__ == "__main__":
    unittest.main()
