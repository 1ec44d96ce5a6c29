"""TLS on the client side: STARTTLS on a plain listener and implicit TLS on an smtps listener,
driven by real clients (Python's ssl/smtplib, openssl s_client, swaks) in front of a real
Postfix.

Owns issue 8 item 1's tests and issue 10's STARTTLS injection case:
  * STARTTLS is offered before TLS and not after; mail sent under TLS arrives with the TLS
    version and cipher in the gateway's Received field ("with ESMTPS (TLSv1.3:...:256)") and
    visible to plugins (tests/integration/plugins/session_items.c writes what it was given);
  * implicit TLS on the smtps profile (openssl s_client, swaks --tlsc);
  * TLS 1.1 is refused, TLS 1.2 accepted;
  * "STARTTLS\\r\\nMAIL FROM:..." in one write: the pipelined MAIL is discarded
    (CVE-2011-0411), never answered nor run;
  * the certificate is replaced and SIGHUP sent while mail flows: new connections present the
    new certificate, a session open across the reload keeps its TLS and delivers, no delivery
    fails; a broken certificate on reload is refused and the running one kept.
Certificates are self-signed, made with openssl in the test's temp dir.
"""

import os
import shutil
import signal
import smtplib
import ssl
import subprocess
import threading
import time
import unittest
import uuid
import warnings

from mgtest import base, sdk, tlscert, util
from mgtest.policyctl import PolicyCtl, log_mark
from mgtest.smtpclient import RawSmtp

ITEMS_C = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins",
                       "session_items.c")
SDK_INCLUDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk",
                           "include")
GATEWAY_NAME = "gateway.mailgate.test"


def client_context(maximum=None, minimum=None, weak=False):
    """A client context that accepts the self-signed test certificates."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if weak:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():  # TLSv1 and TLSv1_1 are deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum is not None:
            ctx.minimum_version = minimum
        if maximum is not None:
            ctx.maximum_version = maximum
    return ctx


def s_client(args, lines, pause=1.0):
    """Runs openssl s_client with `args`, typing `lines` one by one after `pause` seconds (a
    client that talks before the greeting is refused as an early talker); (stdout, stderr)."""
    p = subprocess.Popen(["openssl", "s_client", "-crlf", "-brief", "-ign_eof", *args],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for line in lines:
            time.sleep(pause)
            p.stdin.write(line.encode() + b"\n")
            p.stdin.flush()
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return out.decode(errors="replace"), err.decode(errors="replace")


def unfolded_fields(raw, name):
    """Values of the header field `name` in a delivered message, unfolded."""
    head = raw.split("\n\n", 1)[0]
    out, current = [], None
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and current is not None:
            current += " " + line.strip()
            continue
        if current is not None:
            out.append(current)
            current = None
        if line.lower().startswith(name.lower() + ":"):
            current = line.split(":", 1)[1].strip()
    if current is not None:
        out.append(current)
    return out


class TlsTest(base.PostfixCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            certs = os.path.join(cls.tmpdir, "certs")
            cls.cert_one = tlscert.self_signed(certs, "one." + GATEWAY_NAME, name="one")
            cls.cert_two = tlscert.self_signed(certs, "two." + GATEWAY_NAME, name="two")
            cls.items_so = sdk.compile_c_plugin(ITEMS_C, os.path.join(cls.tmpdir, "items.so"),
                                                SDK_INCLUDE)
        except BaseException:
            super().tearDownClass()
            raise

    # ------------------------------------------------------------------ helpers
    def start(self, extra=(), tls=True):
        d = util.make_tempdir("mailgate-tls-")
        self.addCleanup(util.remove_tree, d)
        ctl = PolicyCtl(os.path.join(d, "policy.db"))
        ctl.init()
        ctl("policy", "domain", "add", base.DOMAIN)
        ctl("policy", "plugin", "add", "--name", "session_items", "--path", self.items_so)
        self.cert = os.path.join(d, "cert.pem")
        self.key = os.path.join(d, "key.pem")
        shutil.copy(self.cert_one[0], self.cert)
        shutil.copy(self.cert_one[1], self.key)
        # smtps here is implicit TLS without the submission rules (test_submission.py has those).
        flags = [f"--policy_db={ctl.db}", "--submission_profiles=submission", *extra]
        listen = "127.0.0.1:0=inbound"
        if tls:
            flags += [f"--tls_cert={self.cert}", f"--tls_key={self.key}"]
            listen += ",127.0.0.1:0=smtps"
        gw = self.start_gateway(flags=flags, listen=listen)
        util.wait_until(lambda: len(gw.listeners) == listen.count(",") + 1, 10,
                        what="every listener")
        self.plain_port = gw.listeners[0][1]
        self.smtps_port = gw.listeners[1][1] if tls else None
        return gw

    def send_tls(self, gw, subject, port=None, implicit=False):
        body = (
            f"From: <sender@example.org>\r\nTo: <{base.USER}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{uuid.uuid4()}@example.org>\r\n\r\nbody of {subject}\r\n")
        if implicit:
            s = smtplib.SMTP_SSL(gw.host, port or self.smtps_port, context=client_context(),
                                 timeout=15, local_hostname="client.example.org")
        else:
            s = smtplib.SMTP(gw.host, port or self.plain_port, timeout=15,
                             local_hostname="client.example.org")
            s.starttls(context=client_context())
        with s:
            refused = s.sendmail("sender@example.org", [base.USER], body.encode())
        self.assertEqual(refused, {})

    def peer_cn(self, gw):
        c = RawSmtp(gw.host, self.plain_port)
        self.addCleanup(c.close)
        c.cmd("EHLO client.example.org")
        self.assertEqual(c.cmd("STARTTLS").code, 220)
        sock = c.start_tls(client_context())
        cn = tlscert.subject_cn(sock.getpeercert(binary_form=True))
        c.quit()
        return cn

    # ------------------------------------------------------------------ tests
    def test_starttls_delivers_with_tls_in_received_and_plugin_items(self):
        gw = self.start()
        subject = f"starttls {uuid.uuid4()}"
        with smtplib.SMTP(gw.host, self.plain_port, timeout=15,
                          local_hostname="client.example.org") as s:
            s.ehlo()
            self.assertTrue(s.has_extn("starttls"))
            self.assertFalse(s.has_extn("auth"))  # inbound: no AUTH, with or without TLS
            code, _ = s.starttls(context=client_context())
            self.assertEqual(code, 220)
            s.ehlo()
            self.assertFalse(s.has_extn("starttls"))
            self.assertFalse(s.has_extn("auth"))
            version = s.sock.version()
            cipher, _, bits = s.sock.cipher()
            body = (f"From: <sender@example.org>\r\nTo: <{base.USER}>\r\nSubject: {subject}\r\n"
                    f"\r\nhello over TLS\r\n")
            self.assertEqual(s.sendmail("sender@example.org", [base.USER], body.encode()), {})
        raw = self.wait_delivered(subject)
        ours = [r for r in unfolded_fields(raw, "Received") if f"by {GATEWAY_NAME}" in r]
        self.assertEqual(len(ours), 1, raw)
        self.assertIn(f"with ESMTPS ({version}:{cipher}:{bits})", ours[0])
        items = unfolded_fields(raw, "X-Session-Items")
        self.assertEqual(items, [f"profile=inbound; protocol=ESMTPS; tls_version={version}; "
                                 f"tls_cipher={cipher}; auth_user=-"])

    def test_plaintext_mail_has_no_tls_items(self):
        gw = self.start()
        subject = f"plain {uuid.uuid4()}"
        with smtplib.SMTP(gw.host, self.plain_port, timeout=15) as s:
            body = f"To: <{base.USER}>\r\nSubject: {subject}\r\n\r\nplain\r\n"
            s.sendmail("sender@example.org", [base.USER], body.encode())
        raw = self.wait_delivered(subject)
        self.assertEqual(unfolded_fields(raw, "X-Session-Items"),
                         ["profile=inbound; protocol=ESMTP; tls_version=-; tls_cipher=-; "
                          "auth_user=-"])
        ours = [r for r in unfolded_fields(raw, "Received") if f"by {GATEWAY_NAME}" in r]
        self.assertIn("with ESMTP id", ours[0])

    def test_implicit_tls_smtplib_and_openssl_s_client(self):
        gw = self.start()
        subject = f"smtps {uuid.uuid4()}"
        self.send_tls(gw, subject, implicit=True)
        raw = self.wait_delivered(subject)
        items = unfolded_fields(raw, "X-Session-Items")[0]
        self.assertIn("profile=smtps; protocol=ESMTPS; tls_version=TLSv1.3", items)
        # openssl s_client: implicit TLS, then EHLO; the greeting comes under TLS.
        out, err = s_client(["-connect", f"{gw.host}:{self.smtps_port}"],
                            ["EHLO s-client.example.org", "QUIT"])
        self.assertIn("220 ", out, out + err)
        self.assertIn("250-PIPELINING", out)
        self.assertNotIn("STARTTLS", out)
        self.assertIn("221 2.0.0", out)
        self.assertIn("Protocol version: TLSv1.3", err)
        # ... and STARTTLS on the plain listener.
        out, err = s_client(["-starttls", "smtp", "-connect", f"{gw.host}:{self.plain_port}"],
                            ["EHLO s-client.example.org", "QUIT"], pause=0.5)
        self.assertIn("250-PIPELINING", out, out + err)
        self.assertNotIn("STARTTLS", out)  # not offered again under TLS
        self.assertIn("221 2.0.0", out)
        self.assertIn("CONNECTION ESTABLISHED", err)

    def test_swaks_starttls_and_tlsc(self):
        gw = self.start()
        for how, port in (("--tls", self.plain_port), ("--tlsc", self.smtps_port)):
            subject = f"swaks {how} {uuid.uuid4()}"
            p = subprocess.run(["swaks", "--server", gw.host, "--port", str(port), how,
                                "--from", "sender@example.org", "--to", base.USER,
                                "--helo", "swaks.example.org", "--header",
                                f"Subject: {subject}", "--body", "sent by swaks"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("TLS started", p.stdout)
            raw = self.wait_delivered(subject)
            self.assertIn("protocol=ESMTPS", unfolded_fields(raw, "X-Session-Items")[0])

    def test_tls_1_1_refused_1_2_accepted(self):
        gw = self.start()
        mark = log_mark(gw)
        c = RawSmtp(gw.host, self.plain_port)
        self.addCleanup(c.close)
        c.cmd("EHLO old.example.org")
        self.assertEqual(c.cmd("STARTTLS").code, 220)
        with self.assertRaises((ssl.SSLError, OSError)):
            c.start_tls(client_context(maximum=ssl.TLSVersion.TLSv1_1,
                                       minimum=ssl.TLSVersion.TLSv1, weak=True))
        gw.wait_for_log(r"STARTTLS handshake failed with unknown\[127\.0\.0\.1\]", start=mark)
        c2 = RawSmtp(gw.host, self.plain_port)
        self.addCleanup(c2.close)
        c2.cmd("EHLO new.example.org")
        self.assertEqual(c2.cmd("STARTTLS").code, 220)
        sock = c2.start_tls(client_context(maximum=ssl.TLSVersion.TLSv1_2))
        self.assertEqual(sock.version(), "TLSv1.2")
        self.assertEqual(c2.cmd("EHLO new.example.org").code, 250)
        self.assertEqual(c2.quit().code, 221)

    def test_starttls_injection_is_discarded(self):
        gw = self.start()
        mark = log_mark(gw)
        c = RawSmtp(gw.host, self.plain_port)
        self.addCleanup(c.close)
        self.assertEqual(c.cmd("EHLO client.example.org").code, 250)
        # One write: STARTTLS and a command an attacker in the path appended in plaintext.
        c.send(b"STARTTLS\r\nMAIL FROM:<inject@evil.example>\r\n")
        r = c.read_reply()
        self.assertEqual((r.code, r.enhanced), (220, "2.0.0"))
        self.assertEqual(c.buf, b"")
        c.start_tls(client_context())
        # Nothing is answered to the injected MAIL, neither now nor after our next command.
        self.assertEqual(c.pending(0.5), b"")
        r = c.cmd("EHLO client.example.org")
        self.assertEqual(r.code, 250)
        self.assertIn("PIPELINING", r.keywords())
        # Had the MAIL run, RCPT would be accepted; it was never seen.
        r = c.cmd(f"RCPT TO:<{base.USER}>")
        self.assertEqual((r.code, r.enhanced), (503, "5.5.1"))
        self.assertEqual(c.pending(0.3), b"")
        gw.wait_for_log(r"possible STARTTLS command injection .* \d+ bytes sent after "
                        r"STARTTLS discarded", start=mark)
        self.assertEqual(c.quit().code, 221)

    def test_starttls_sequence_errors(self):
        gw = self.start()
        c = RawSmtp(gw.host, self.plain_port)
        self.addCleanup(c.close)
        r = c.cmd("STARTTLS")
        self.assertEqual((r.code, r.enhanced), (503, "5.5.1"))  # EHLO first
        c.cmd("EHLO client.example.org")
        r = c.cmd("STARTTLS now")
        self.assertEqual((r.code, r.enhanced), (501, "5.5.4"))
        self.assertEqual(c.cmd("MAIL FROM:<sender@example.org>").code, 250)
        r = c.cmd("STARTTLS")
        self.assertEqual((r.code, r.enhanced), (503, "5.5.1"))  # not inside a transaction
        self.assertEqual(c.cmd("RSET").code, 250)
        self.assertEqual(c.cmd("STARTTLS").code, 220)
        c.start_tls(client_context())
        r = c.cmd("MAIL FROM:<sender@example.org>")
        self.assertEqual((r.code, r.enhanced), (503, "5.5.1"))  # EHLO again after TLS
        c.cmd("EHLO client.example.org")
        r = c.cmd("STARTTLS")
        self.assertEqual((r.code, r.enhanced), (503, "5.5.1"))  # TLS already active
        self.assertEqual(c.quit().code, 221)

    def test_without_certificate_no_starttls(self):
        gw = self.start(tls=False)
        c = RawSmtp(gw.host, self.plain_port)
        self.addCleanup(c.close)
        self.assertNotIn("STARTTLS", c.cmd("EHLO client.example.org").keywords())
        r = c.cmd("STARTTLS")
        self.assertEqual((r.code, r.enhanced), (502, "5.5.1"))

    def test_smtps_without_certificate_is_a_startup_error(self):
        p = subprocess.run([base.require_binary(), "--listen=127.0.0.1:0=smtps",
                            "--dns_servers=none", "--policy_db=/nonexistent/x.db"],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--listen: '127.0.0.1:0=smtps': profile smtps is in --smtps_profiles",
                      p.stdout + p.stderr)

    def test_certificate_reload_under_traffic(self):
        gw = self.start()
        self.assertEqual(self.peer_cn(gw), "one." + GATEWAY_NAME)
        # A session that stays open across the reload, already under TLS.
        held = RawSmtp(gw.host, self.plain_port)
        self.addCleanup(held.close)
        held.cmd("EHLO held.example.org")
        self.assertEqual(held.cmd("STARTTLS").code, 220)
        held_sock = held.start_tls(client_context())
        self.assertEqual(held.cmd("EHLO held.example.org").code, 250)

        results = {"ok": 0, "failed": []}
        stop = threading.Event()

        def traffic():
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    self.send_tls(gw, f"reload traffic {n} {uuid.uuid4()}",
                                  implicit=(n % 2 == 0))
                    results["ok"] += 1
                except Exception as e:  # noqa: BLE001 - every failure is reported
                    results["failed"].append(repr(e))

        t = threading.Thread(target=traffic, daemon=True)
        t.start()
        self.addCleanup(stop.set)
        util.wait_until(lambda: results["ok"] >= 3, 20, what="traffic before the reload")
        mark = log_mark(gw)
        shutil.copy(self.cert_two[0], self.cert + ".new")
        shutil.copy(self.cert_two[1], self.key + ".new")
        os.replace(self.key + ".new", self.key)
        os.replace(self.cert + ".new", self.cert)
        gw.signal(signal.SIGHUP)
        gw.wait_for_log(r"TLS: loaded .*two\.gateway\.mailgate\.test", start=mark)
        before = results["ok"]
        util.wait_until(lambda: results["ok"] >= before + 3, 20, what="traffic after the reload")
        self.assertEqual(self.peer_cn(gw), "two." + GATEWAY_NAME)

        # A broken certificate on reload: refused, the running one stays.
        mark = log_mark(gw)
        with open(self.cert, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        gw.signal(signal.SIGHUP)
        gw.wait_for_log(r"reload: TLS: --tls_cert=.*cannot load the certificate chain", start=mark)
        before = results["ok"]
        util.wait_until(lambda: results["ok"] >= before + 2, 20, what="traffic after bad reload")
        self.assertEqual(self.peer_cn(gw), "two." + GATEWAY_NAME)
        stop.set()
        t.join(30)
        self.assertEqual(results["failed"], [])

        # The held session kept its TLS (certificate one) and still delivers.
        self.assertEqual(tlscert.subject_cn(held_sock.getpeercert(binary_form=True)),
                         "one." + GATEWAY_NAME)
        subject = f"held across reload {uuid.uuid4()}"
        self.assertEqual(held.cmd("MAIL FROM:<sender@example.org>").code, 250)
        self.assertEqual(held.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        self.assertEqual(held.cmd("DATA").code, 354)
        r = held.data(f"Subject: {subject}\r\n\r\nstill here\r\n.\r\n".encode())
        self.assertEqual(r.code, 250, r)
        self.assertEqual(held.quit().code, 221)
        self.wait_delivered(subject)


class BackendStarttlsTest(base.PostfixCase):
    """--backend_starttls=opportunistic against a Postfix offering STARTTLS (smtpd_tls_*)."""

    @classmethod
    def setUpClass(cls):
        cls.backend_certs = util.make_tempdir("mailgate-backend-cert-")
        cert, key = tlscert.self_signed(cls.backend_certs, "backend.mailgate.test")
        os.chmod(key, 0o644)  # read by Postfix's smtpd; a throw-away test key
        cls.postfix_extra_main = {
            "smtpd_tls_security_level": "may",
            "smtpd_tls_cert_file": cert,
            "smtpd_tls_key_file": key,
            "smtpd_tls_received_header": "yes",
            "smtpd_tls_loglevel": "1",
        }
        try:
            super().setUpClass()
        except BaseException:
            util.remove_tree(cls.backend_certs)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            util.remove_tree(cls.backend_certs)

    def send(self, gw, subject):
        with smtplib.SMTP(gw.host, gw.port, timeout=15) as s:
            body = f"To: <{base.USER}>\r\nSubject: {subject}\r\n\r\nto the backend\r\n"
            self.assertEqual(s.sendmail("sender@example.org", [base.USER], body.encode()), {})
        return self.wait_delivered(subject)

    def test_opportunistic_starttls_to_the_backend(self):
        # One I/O thread: one pool, so the second message can reuse the first connection.
        gw = self.start_gateway(flags=["--backend_starttls=opportunistic", "--threads=1"])
        raw = self.send(gw, f"backend tls {uuid.uuid4()}")
        theirs = [r for r in unfolded_fields(raw, "Received") if "by backend.mailgate.test" in r]
        self.assertEqual(len(theirs), 1, raw)
        self.assertRegex(theirs[0], r"\(using TLSv1\.3 with cipher \S+")
        # XCLIENT after STARTTLS still introduced the real client.
        self.assertIn("[127.0.0.1]", theirs[0])
        self.assertIn("Anonymous TLS connection established from", self.postfix.maillog())
        # The TLS connection goes back to the pool: a second message reuses it.
        before = self.postfix.maillog().count("Anonymous TLS connection established from")
        self.send(gw, f"backend tls again {uuid.uuid4()}")
        self.assertEqual(
            self.postfix.maillog().count("Anonymous TLS connection established from"), before)

    def test_off_by_default(self):
        gw = self.start_gateway()
        raw = self.send(gw, f"backend plain {uuid.uuid4()}")
        theirs = [r for r in unfolded_fields(raw, "Received") if "by backend.mailgate.test" in r]
        self.assertNotIn("using TLS", theirs[0])

    def test_bad_flag_value(self):
        p = subprocess.run([base.require_binary(), "--backend_starttls=required",
                            "--dns_servers=none"], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--backend_starttls: must be 'off' or 'opportunistic', not 'required'",
                      p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
