"""Third-party plugins in the real gateway, in front of a real Postfix.

Owns:
  * "the out-of-tree example plugin loads and acts": contrib/example-plugin is built against
    the SDK installed into a temp prefix (cmake --install --component sdk, then
    find_package(mailgate)), registered with mailgatectl by absolute path, and its effects are
    seen in what Postfix delivers (its header, its Subject tag, the C example's header) and
    in what the client gets (its RCPT refusal and reply text);
  * plugin timeouts and fail modes through the gateway: tests/integration/plugins/slow.c
    (compiled here with gcc against the installed headers) sleeps at MAIL; with
    --timeout-ms 200 and fail mode tempfail the client gets 451 4.3.0 quickly while the
    gateway keeps serving other connections; with fail mode open the mail is delivered;
  * plugin mistakes: a plugin whose create() refuses its settings, or whose path is wrong,
    stops the gateway at start-up (exit != 0, the message names the plugin); the same mistake
    made live leaves the running chain in place and is logged; a .so that does not load is
    reported as "plugin 'NAME' (PATH): cannot load: <dlerror()>".
test_sdk_install.py checks the installed SDK tree itself; this file only uses it.
"""

import json
import os
import re
import threading
import time
import unittest
import uuid

from mgtest import base, sdk, util
from mgtest.gateway import run_once
from mgtest.policyctl import PolicyCtl, log_mark, wait_policy_applied
from mgtest.smtpclient import message_data

SLOW_C = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins", "slow.c")
SUBJECT_TAG_SETTINGS = {"score": 1.5, "reject_prefix": "noreply-", "subject_tag": "[external]"}


def token():
    return uuid.uuid4().hex[:10]


class PluginsGatewayTest(base.PostfixCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            work = os.path.join(cls.tmpdir, "sdk")
            os.makedirs(work)
            cls.prefix = sdk.install_sdk(os.path.join(work, "prefix"), work)
            built = sdk.build_example(cls.prefix, os.path.join(work, "example-build"))
            cls.subject_tag_so = built["subject_tag"]
            cls.hello_so = built["hello"]
            cls.slow_so = sdk.compile_c_plugin(SLOW_C, os.path.join(work, "slow.so"),
                                               os.path.join(cls.prefix, "include"))
        except BaseException:
            super().tearDownClass()
            raise

    # --------------------------------------------------------------------------- helpers
    def policy(self):
        d = util.make_tempdir("mailgate-plugins-policy-")
        self.addCleanup(util.remove_tree, d)
        ctl = PolicyCtl(os.path.join(d, "policy.db"))
        ctl.init()
        ctl("policy", "domain", "add", base.DOMAIN)
        ctl("policy", "plugin", "add", "--name", "access", "--path", "access.so")
        return ctl

    def add_subject_tag(self, ctl, settings=None):
        ctl("policy", "plugin", "add", "--name", "subject_tag", "--path", self.subject_tag_so,
            "--settings", json.dumps(settings or SUBJECT_TAG_SETTINGS), "--fail-mode",
            "tempfail", "--timeout-ms", "2000")

    def add_slow(self, ctl, fail_mode, sleep_ms=3000):
        ctl("policy", "plugin", "add", "--name", "slow", "--path", self.slow_so, "--settings",
            json.dumps({"sleep_ms": sleep_ms, "sender_prefix": "slow"}), "--fail-mode",
            fail_mode, "--timeout-ms", "200")

    def gateway(self, ctl, flags=()):
        gw = self.start_gateway(flags=[f"--policy_db={ctl.db}", "--policy_poll_ms=100", *flags])
        gw.wait_for_log(r"plugin chains ready")
        return gw

    def gateway_flags(self, ctl):
        """Flags for run_once(): what Gateway passes, for a gateway that is expected to exit."""
        spool = util.make_tempdir("mailgate-spool-")
        self.addCleanup(util.remove_tree, spool)
        return ["--listen=127.0.0.1:0", f"--backend=127.0.0.1:{self.postfix.port}",
                f"--spool_dir={spool}", f"--policy_db={ctl.db}", "--dns_servers=none",
                f"--plugin_dir={os.environ.get('MAILGATE_PLUGIN_DIR', '')}"]

    def client(self, gw, helo="client.example"):
        c = self.connect(gw, source_address=("127.0.0.2", 0))
        self.assertEqual(c.cmd(f"EHLO {helo}").code, 250)
        return c

    def send(self, c, sender, rcpt, subject):
        """One transaction; returns (MAIL reply, final reply or None)."""
        mail = c.cmd(f"MAIL FROM:<{sender}>")
        if mail.code != 250:
            return mail, None
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        self.assertEqual(r.code, 250, r)
        self.assertEqual(c.cmd("DATA").code, 354)
        final = c.data(message_data(f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {subject}"
                                    f"\r\n\r\nbody of {subject}\r\n"))
        return mail, final

    def delivered(self, marker, user=base.USER):
        """The delivered message whose body mentions `marker` (waits for it)."""
        def find():
            return next((m for m in self.postfix.messages(user) if marker.encode() in m), None)
        return util.wait_until(find, 20, what=f"delivery of {marker}").decode("utf-8", "replace")

    # --------------------------------------------------------------------------- the example
    def test_example_plugins_built_out_of_tree_load_and_act(self):
        ctl = self.policy()
        self.add_subject_tag(ctl)
        ctl("policy", "plugin", "add", "--name", "hello", "--path", self.hello_so)
        gw = self.gateway(ctl)
        gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 3 plugin instances\)")

        c = self.client(gw)
        self.assertEqual(c.cmd("MAIL FROM:<sender@elsewhere.example>").code, 250)
        r = c.cmd("RCPT TO:<NoReply-billing@example.test>")
        self.assertEqual(r.wire, "550 5.7.1 Recipient not accepted here")
        gw.wait_for_log(r"subject_tag.*refusing <NoReply-billing@example\.test>")
        self.assertEqual(c.cmd("RSET").code, 250)
        subject = f"lunch-{token()}"
        mail, final = self.send(c, "sender@elsewhere.example", base.USER, subject)
        self.assertEqual(final.code, 250, final)
        c.quit()

        msg = self.delivered(subject)
        headers = msg.split("\n\n", 1)[0].replace("\r", "")
        self.assertIn("\nX-Example-Plugin: seen\n", headers)
        self.assertIn(f"\nSubject: [external] {subject}\n", headers)
        self.assertRegex(headers, r"\nX-Hello: 127\.0\.0\.2\n")
        # The score symbol reached the gateway's transaction log.
        line = next(l for l in gw.wait_for_transactions(1) if "status=accepted" in l)
        self.assertIn("score=1.50", line)

    # --------------------------------------------------------------------------- timeouts
    def test_timeout_with_fail_mode_tempfail_answers_451_quickly_and_keeps_serving(self):
        ctl = self.policy()
        self.add_slow(ctl, "tempfail")
        gw = self.gateway(ctl)

        slow = self.client(gw)
        result = {}

        def slow_mail():
            t0 = time.monotonic()
            result["reply"] = slow.cmd("MAIL FROM:<slow@elsewhere.example>")
            result["took"] = time.monotonic() - t0
        th = threading.Thread(target=slow_mail, daemon=True)
        th.start()
        # While the slow call waits (and for seconds after, while its worker still sleeps),
        # other connections are served.
        fast = self.client(gw, helo="fast.example")
        t0 = time.monotonic()
        subject = f"fast-{token()}"
        _, final = self.send(fast, "fast@elsewhere.example", base.USER, subject)
        self.assertEqual(final.code, 250, final)
        self.assertLess(time.monotonic() - t0, 2.0)
        fast.quit()
        th.join(10)

        self.assertEqual(result["reply"].wire, "451 4.3.0 Temporary filter failure, try again "
                                               "later")
        self.assertGreaterEqual(result["took"], 0.19)
        self.assertLess(result["took"], 1.5, "the 200 ms timeout applied, not the 3 s sleep")
        gw.wait_for_log(r"plugin slow: mail timed out after 200 ms: fail mode tempfail")
        # The session that timed out goes on.
        subject2 = f"after-timeout-{token()}"
        _, final = self.send(slow, "fast2@elsewhere.example", base.USER, subject2)
        self.assertEqual(final.code, 250, final)
        slow.quit()
        self.delivered(subject)
        self.delivered(subject2)
        self.assertTrue(gw.running())

    def test_timeout_with_fail_mode_open_delivers(self):
        ctl = self.policy()
        self.add_slow(ctl, "open")
        gw = self.gateway(ctl)
        c = self.client(gw)
        subject = f"slow-open-{token()}"
        t0 = time.monotonic()
        mail, final = self.send(c, "slow@elsewhere.example", base.USER, subject)
        self.assertEqual(mail.code, 250, mail)
        self.assertLess(time.monotonic() - t0, 2.5)
        self.assertEqual(final.code, 250, final)
        c.quit()
        self.delivered(subject)
        gw.wait_for_log(r"plugin slow: mail timed out after 200 ms: fail mode open")

    # --------------------------------------------------------------------------- mistakes
    def exits_at_start_up(self, ctl):
        """Runs a gateway that must refuse to start; returns its output."""
        t0 = time.monotonic()
        code, out = run_once(self.gateway_flags(ctl), timeout=20)
        self.assertIsNotNone(code, f"the gateway did not exit:\n{out}")
        self.assertNotEqual(code, 0, out)
        self.assertLess(time.monotonic() - t0, 10)
        # (It logs "listening on" before it loads the chain, then exits: the port is bound for
        # a moment. Not asserted either way.)
        return out

    def test_create_failure_at_start_up_stops_the_gateway_naming_the_plugin(self):
        ctl = self.policy()
        self.add_subject_tag(ctl, {"reject_prefx": "noreply-"})  # a typo in a key
        out = self.exits_at_start_up(ctl)
        self.assertIn(f"mailgate: policy {ctl.db}: profile 'inbound': plugin 'subject_tag': "
                      f"create failed: unknown setting \"reject_prefx\"", out)

    def test_wrong_path_at_start_up_stops_the_gateway_with_the_loader_error(self):
        ctl = self.policy()
        missing = os.path.join(self.tmpdir, "no-such-dir", "subject_tag.so")
        ctl("policy", "plugin", "add", "--name", "subject_tag", "--path", missing)
        out = self.exits_at_start_up(ctl)
        self.assertIn(f"plugin 'subject_tag' ({missing}): cannot load: {missing}: cannot open "
                      f"shared object file: No such file or directory", out)

    def test_wrong_path_at_start_up_names_the_chain_entry(self):
        # The entry's name is what the admin types to fix it (`policy plugin set NAME --path`),
        # and it need not appear in the file name (plugin-guide.md: install versions under new
        # names, "subject_tag-1.1.so").
        ctl = self.policy()
        missing = os.path.join(self.tmpdir, "no-such-dir", "tagger-1.1.so")
        ctl("policy", "plugin", "add", "--name", "subject_tag", "--path", missing)
        out = self.exits_at_start_up(ctl)
        self.assertIn(f"cannot load: {missing}", out)
        self.assertIn("'subject_tag'", out, "the error does not name the chain entry")

    def test_the_same_mistakes_made_live_keep_the_running_chain(self):
        ctl = self.policy()
        self.add_subject_tag(ctl)
        gw = self.gateway(ctl)

        # 1. Settings that create() refuses: logged, the running chain (old settings) stays.
        mark = log_mark(gw)
        ctl("policy", "plugin", "set", "subject_tag", "--settings",
            json.dumps({"subject_tag": "[new]", "bogus": True}))
        m = gw.wait_for_log(r"plugin chain not rebuilt, keeping the running one: (.*)",
                            start=mark)
        self.assertIn("plugin 'subject_tag': create failed: unknown setting \"bogus\"",
                      m.group(1))
        self.assertEqual(self.tagged_with(gw), "[external]")
        c = self.client(gw)
        self.assertEqual(c.cmd("MAIL FROM:<a@elsewhere.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<noreply-x@example.test>").code, 550)  # old settings
        c.quit()

        # Fixed: the new settings load.
        mark = log_mark(gw)
        ctl("policy", "plugin", "set", "subject_tag", "--settings",
            json.dumps({"subject_tag": "[new]"}))
        wait_policy_applied(gw, mark)
        self.assertEqual(self.tagged_with(gw), "[new]")

        # 2. A plugin whose file does not exist: logged, the running chain stays.
        mark = log_mark(gw)
        ghost = os.path.join(self.tmpdir, "no-such-dir", "ghost.so")
        ctl("policy", "plugin", "add", "--name", "ghost", "--path", ghost)
        m = gw.wait_for_log(r"plugin chain not rebuilt, keeping the running one: (.*)",
                            start=mark)
        self.assertIn(f"plugin 'ghost' ({ghost}): cannot load: {ghost}: cannot open shared "
                      f"object file", m.group(1))
        self.assertEqual(self.tagged_with(gw), "[new]")
        self.assertTrue(gw.running())

        # Removed again: a chain of two plugins is built.
        mark = log_mark(gw)
        ctl("policy", "plugin", "remove", "ghost")
        gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 2 plugin instances\)", start=mark)
        self.assertEqual(self.tagged_with(gw), "[new]")

    def tagged_with(self, gw):
        """Sends one message through a new connection; the tag subject_tag put on it."""
        c = self.client(gw)
        subject = f"tag-{token()}"
        _, final = self.send(c, "a@elsewhere.example", base.USER, subject)
        self.assertEqual(final.code, 250, final)
        c.quit()
        m = re.search(rf"\nSubject: (.*) {subject}\r?\n", self.delivered(subject))
        self.assertIsNotNone(m, "no tagged Subject")
        return m.group(1)

if __name__ == "__main__":
    unittest.main()
