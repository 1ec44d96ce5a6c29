"""The `milter` plugin (plugins/milter) in the real gateway, in front of a real Postfix, talking
to a real external milter: Debian's opendkim in signing mode, started by the test on a port the
OS picked, with a key made by opendkim-genkey.

Owns: mail relayed through the proxy arrives signed by opendkim with simple/simple
canonicalization over header fields with unusual white space and folding (python3-dkim verifies
the delivered message against the public key opendkim-genkey wrote, given directly: no DNS), and
with opendkim stopped (by PID) the plugin's per-milter fail mode decides: "tempfail" answers
MAIL FROM with 451 4.7.1 and nothing is delivered (also when it stops between two transactions
of one session), "continue" relays the message unsigned.
"""

import os
import re
import signal
import socket
import struct
import subprocess
import threading
import unittest
import uuid

from mgtest import base, dkimtool, util
from mgtest.policyctl import PolicyCtl, builtin_plugin
from mgtest.smtpclient import message_data

ZONE = "milter.test"
SELECTOR = "sel1"
OPENDKIM = "/usr/sbin/opendkim"
GENKEY = "/usr/sbin/opendkim-genkey"


def message(t, case):
    return (f"From: Alice <alice@{ZONE}>\r\n"
            f"To:  <{base.USER}>\r\n"
            f"Cc: first@{ZONE},\r\n"
            f"\tsecond@{ZONE}\r\n"
            f"Subject: milter-{case}-{t}\r\n"
            f"Date: Sun, 22 Nov 2026 06:00:00 +0000\r\n"
            f"Message-ID: <{t}.{case}@{ZONE}>\r\n"
            f"X-Folded: first part\r\n"
            f"\tsecond part\r\n"
            f"\r\n"
            f"Hello,\r\n"
            f"  this message went through opendkim ({case}).\r\n")


class OpenDkim:
    """opendkim in the foreground on 127.0.0.1:port, signing for ZONE; stopped by PID."""

    def __init__(self, directory):
        self.dir = directory
        subprocess.run([GENKEY, "-D", directory, "-d", ZONE, "-s", SELECTOR, "-b", "2048"],
                       check=True, capture_output=True, timeout=60)
        with open(os.path.join(directory, f"{SELECTOR}.txt"), encoding="ascii") as f:
            text = f.read()
        # sel1._domainkey IN TXT ( "v=DKIM1; h=sha256; k=rsa; " "p=MIIB..." "..." )  ; comment
        self.record = "".join(re.findall(r'"([^"]*)"', text))
        self.port = util.free_port()
        self.proc = None

    def start(self):
        conf = os.path.join(self.dir, "opendkim.conf")
        with open(conf, "w", encoding="ascii") as f:
            f.write(f"Mode s\n"
                    f"Domain {ZONE}\n"
                    f"Selector {SELECTOR}\n"
                    f"KeyFile {self.dir}/{SELECTOR}.private\n"
                    f"Socket inet:{self.port}@127.0.0.1\n"
                    f"PidFile {self.dir}/opendkim.pid\n"
                    f"Canonicalization simple/simple\n"
                    f"InternalHosts 127.0.0.1\n"
                    f"RequireSafeKeys no\n"
                    f"Background no\n"
                    f"Syslog no\n")
        self.log = open(os.path.join(self.dir, "opendkim.log"), "w", encoding="utf-8")
        self.proc = subprocess.Popen([OPENDKIM, "-f", "-x", conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        util.wait_until(lambda: util.port_accepts("127.0.0.1", self.port) or
                        self.proc.poll() is not None, 20, what="opendkim listening")
        if self.proc.poll() is not None:
            raise RuntimeError(f"opendkim exited with {self.proc.returncode}: {self.output()}")
        return self

    def output(self):
        with open(os.path.join(self.dir, "opendkim.log"), encoding="utf-8") as f:
            return f.read()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.proc is not None:
            self.log.close()
        self.proc = None


class SilentMilter:
    """A milter on 127.0.0.1 that negotiates, answers CONNECT and HELO, never MAIL: the
    plugin's callback overruns the plugin row's timeout and the gateway abandons it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.conns = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @staticmethod
    def packet(command, data=b""):
        return struct.pack(">I", len(data) + 1) + command + data

    def serve(self):
        self.sock.settimeout(0.1)
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)
            threading.Thread(target=self.talk, args=(conn,), daemon=True).start()

    def talk(self, conn):
        buf = b""
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                    n = struct.unpack(">I", buf[:4])[0]
                    command, buf = buf[4:5], buf[4 + n:]
                    if command == b"O":
                        conn.sendall(self.packet(b"O", struct.pack(">III", 6, 0, 0)))
                    elif command in (b"C", b"H"):
                        conn.sendall(self.packet(b"c"))
                    # MAIL and the rest: silence
        except OSError:
            return

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()
        for c in self.conns:
            c.close()


@unittest.skipUnless(os.access(OPENDKIM, os.X_OK) and os.access(GENKEY, os.X_OK),
                     "opendkim and opendkim-tools are not installed")
@unittest.skipUnless(dkimtool.available(), "python3-dkim is not installed for /usr/bin/python3")
class MilterClientTest(base.PostfixCase):
    def setUp(self):
        self.plugin = builtin_plugin("milter")
        self.tmp = util.make_tempdir("mailgate-milterc-")
        self.addCleanup(util.remove_tree, self.tmp)
        self.dkim = OpenDkim(self.tmp)
        self.addCleanup(self.dkim.stop)
        self.dkim.start()
        self.ctl = PolicyCtl(os.path.join(self.tmp, "policy.db"))
        self.ctl.init()
        self.ctl("policy", "domain", "add", base.DOMAIN)
        self.ctl("policy", "network", "add", "127.0.0.1/32")

    def gateway(self, fail_mode):
        settings = ('{"milters":[{"name":"opendkim","socket":"inet:%d@127.0.0.1",'
                    '"connect_timeout_ms":1000,"timeout_ms":5000,"fail_mode":"%s"}]}'
                    % (self.dkim.port, fail_mode))
        self.ctl("policy", "plugin", "add", "--name", "milter", "--path", self.plugin,
                 "--settings", settings, "--fail-mode", "tempfail", "--timeout-ms", "15000")
        gw = self.start_gateway(flags=[f"--policy_db={self.ctl.db}", "--policy_poll_ms=100"])
        gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 1 plugin instances\)")
        return gw

    def session(self, gw):
        c = self.connect(gw, timeout=30)
        self.assertEqual(c.greeting.code, 220, c.greeting)
        self.assertEqual(c.cmd("EHLO client.milter.test").code, 250)
        return c

    def send(self, gw, text):
        c = self.session(gw)
        self.assertEqual(c.cmd(f"MAIL FROM:<alice@{ZONE}>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        r = c.data(message_data(text.encode("ascii")), timeout=30)
        self.assertEqual(r.code, 250, r)
        c.quit()

    def delivered_raw(self, subject):
        found = []

        def look():
            for m in self.postfix.messages(base.USER):
                crlf = m.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
                if f"\r\nSubject: {subject}\r\n".encode() in crlf:
                    found.append(crlf)
                    return True
            return False

        util.wait_until(look, 20, what=f"delivery of {subject}")
        return found[0]

    def verify(self, raw):
        return dkimtool.run([{"op": "verify_keys", "message": raw.decode("ascii"),
                              "keys": {f"{SELECTOR}._domainkey.{ZONE}": self.dkim.record}}])[0]

    def test_relayed_mail_arrives_signed_by_opendkim(self):
        gw = self.gateway("tempfail")
        for case in ("one", "two"):  # two transactions on fresh sessions
            t = uuid.uuid4().hex[:12]
            self.send(gw, message(t, case))
            raw = self.delivered_raw(f"milter-{case}-{t}")
            head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
            self.assertIn("DKIM-Signature:", head, raw)
            self.assertRegex(head, rf"d={re.escape(ZONE)};")
            self.assertRegex(head, rf"s={SELECTOR};")
            # simple/simple: the signature holds only when opendkim saw each signed field's
            # value exactly (the two spaces after "To:", the folding of Cc:).
            signature = re.search(r"DKIM-Signature:(.*?)\r\n(?![ \t])", head, re.S).group(1)
            unfolded = re.sub(r"\s+", "", signature)
            self.assertIn("c=simple/simple;", unfolded)
            signed = re.search(r"(?:^|;)h=([^;]*)", unfolded).group(1).lower().split(":")
            self.assertIn("to", signed)
            self.assertIn("cc", signed)
            self.assertEqual(self.verify(raw), [True], raw)
            tampered = raw.replace(b"went through", b"went THROUGH")
            self.assertEqual(self.verify(tampered), [False])

    def test_stopped_milter_tempfails(self):
        gw = self.gateway("tempfail")
        self.dkim.stop()
        c = self.session(gw)
        r = c.cmd(f"MAIL FROM:<alice@{ZONE}>")
        self.assertEqual(r.code, 451, r)
        self.assertIn("4.7.1", str(r))
        c.quit()
        gw.wait_for_log(r'milter "opendkim" \(inet:\d+@127\.0\.0\.1\) unusable for this session: '
                        r'connect: Connection refused; fail mode tempfail')

    def test_milter_stopped_inside_a_session_tempfails_the_next_transaction(self):
        gw = self.gateway("tempfail")
        t = uuid.uuid4().hex[:12]
        c = self.session(gw)
        self.assertEqual(c.cmd(f"MAIL FROM:<alice@{ZONE}>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        r = c.data(message_data(message(t, "first").encode("ascii")), timeout=30)
        self.assertEqual(r.code, 250, r)
        self.dkim.stop()  # the session's milter connection is now closed under it
        r = c.cmd(f"MAIL FROM:<alice@{ZONE}>")
        self.assertEqual(r.code, 451, r)
        self.assertIn("4.7.1", str(r))
        c.quit()
        self.assertEqual(self.verify(self.delivered_raw(f"milter-first-{t}")), [True])
        gw.wait_for_log(r'milter "opendkim" \(inet:\d+@127\.0\.0\.1\) unusable for this session: '
                        r'.*; fail mode tempfail')

    def test_callback_abandoned_by_the_gateway_does_not_break_the_session(self):
        # The row's timeout (1 s) is shorter than the milter's (3 s): the gateway gives up on the
        # MAIL callback and applies the row's fail mode while the call still waits; the
        # session's next callbacks wait for it, then the milter's own failure is reported. (The
        # row's timeout also covers CONNECT, answered by this Python milter: under a loaded
        # machine 300 ms was too tight and the greeting itself was tempfailed now and then.)
        silent = SilentMilter()
        self.addCleanup(silent.close)
        settings = ('{"milters":[{"name":"silent","socket":"inet:%d@127.0.0.1",'
                    '"timeout_ms":3000}]}' % silent.port)
        self.ctl("policy", "plugin", "add", "--name", "milter", "--path", self.plugin,
                 "--settings", settings, "--fail-mode", "tempfail", "--timeout-ms", "1000")
        gw = self.start_gateway(flags=[f"--policy_db={self.ctl.db}", "--policy_poll_ms=100"])
        gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 1 plugin instances\)")
        for _ in range(2):
            c = self.session(gw)
            r = c.cmd(f"MAIL FROM:<alice@{ZONE}>")
            self.assertEqual(r.code // 100, 4, r)
            self.assertEqual(c.cmd("RSET").code, 250)
            r = c.cmd(f"MAIL FROM:<alice@{ZONE}>")
            self.assertEqual(r.code // 100, 4, r)
            c.quit()
        gw.wait_for_log(r'milter "silent" .* unusable for this session: no answer within 3000 ms',
                        timeout=30)
        self.assertTrue(gw.running())

    def test_stopped_milter_with_fail_mode_continue_relays_unsigned(self):
        gw = self.gateway("continue")
        self.dkim.stop()
        t = uuid.uuid4().hex[:12]
        self.send(gw, message(t, "continue"))
        raw = self.delivered_raw(f"milter-continue-{t}")
        self.assertNotIn(b"DKIM-Signature:", raw.split(b"\r\n\r\n", 1)[0])
        gw.wait_for_log(r"fail mode continue")


if __name__ == "__main__":
    unittest.main()
