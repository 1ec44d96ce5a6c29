"""`mailgatectl check`: runs a profile's plugin chain over a message with a given envelope and
reports every plugin call, the symbols and score, the edits and the verdict (text and --json),
with exit codes 0 accept, 3 reject, 4 tempfail, 5 discard, 1 failure, 2 bad command line.

The chain is made of the chain unit tests' scripted plugins (tests/unit/chain/plugins/
scripted.c built as tp_alpha.so, tp_beta.so and tp_gamma.so, the last non-blocking), whose
behaviour per stage comes from their settings, so every outcome is deterministic. The built-in
`access` plugin is used when the build has it (MAILGATE_PLUGIN_DIR/access.so).

Environment (ctest sets them): MAILGATECTL_BIN, MAILGATE_TEST_PLUGIN_DIR (the unit-test build's
test_plugins directory), MAILGATE_PLUGIN_DIR (the built-in plugins); otherwise they are looked
for under MAILGATE_SOURCE_DIR/build.
"""

import json
import os
import subprocess
import time
import unittest

from mgtest import util

SOURCE_DIR = os.environ.get("MAILGATE_SOURCE_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..")

MESSAGE = ("From: Sender <sender@example.org>\n"
           "To: Alice <alice@example.com>\n"
           "Subject: check me\n"
           "Received: from a (a [192.0.2.1])\n"
           "\tby b; Mon, 1 Jan 2024 00:00:00 +0000\n"
           "\n"
           "Hello,\n"
           "this is the body.\n")

EXIT_ACCEPT, EXIT_FAILURE, EXIT_USAGE, EXIT_REJECT, EXIT_TEMPFAIL, EXIT_DISCARD = 0, 1, 2, 3, 4, 5


def ctl_path():
    path = os.environ.get("MAILGATECTL_BIN") or os.path.join(SOURCE_DIR, "build", "tools",
                                                             "mailgatectl")
    return os.path.abspath(path)


def test_plugin_dir():
    path = os.environ.get("MAILGATE_TEST_PLUGIN_DIR") or os.path.join(
        SOURCE_DIR, "build", "tests", "test_plugins")
    return os.path.abspath(path)


def builtin_plugin_dir():
    path = os.environ.get("MAILGATE_PLUGIN_DIR") or os.path.join(SOURCE_DIR, "build", "plugins")
    return os.path.abspath(path)


class CheckCase(unittest.TestCase):
    """A fresh database per test; helpers to add scripted plugins and run check."""

    @classmethod
    def setUpClass(cls):
        cls.bin = ctl_path()
        if not os.access(cls.bin, os.X_OK):
            raise FileNotFoundError(f"mailgatectl not found or not executable: {cls.bin} "
                                    f"(set MAILGATECTL_BIN)")
        cls.tp_dir = test_plugin_dir()

    def setUp(self):
        self.dir = util.make_tempdir("mailgate-check-")
        self.addCleanup(util.remove_tree, self.dir)
        self.db = os.path.join(self.dir, "policy.db")
        self.ctl("init")
        self.msg = self.write("message.eml", MESSAGE)

    def write(self, name, text, mode="w"):
        path = os.path.join(self.dir, name)
        with open(path, mode) as f:
            f.write(text)
        return path

    def ctl(self, *args, stdin=None, check=True):
        env = {k: v for k, v in os.environ.items() if k != "MAILGATE_DB"}
        p = subprocess.run([self.bin, "--db", self.db] + list(args), capture_output=True,
                           text=True, timeout=60, env=env, input=stdin)
        self.assertGreaterEqual(p.returncode, 0, f"{args}: killed by signal {-p.returncode}")
        if check:
            self.assertEqual(p.returncode, 0, f"{args}: exit {p.returncode}\n{p.stderr}")
        return p

    def scripted(self, name, script, fail_mode="tempfail", timeout_ms=5000, profile="*",
                 settings=None):
        """Adds tp_<name>.so (alpha, beta or gamma) to the chain with `script`."""
        path = os.path.join(self.tp_dir, f"tp_{name}.so")
        if not os.path.exists(path):
            self.skipTest(f"test plugin {path} not built (set MAILGATE_TEST_PLUGIN_DIR)")
        if settings is None:
            settings = json.dumps({"script": script})
        self.ctl("policy", "plugin", "add", "--name", name, "--path", path, "--settings",
                 settings, "--fail-mode", fail_mode, "--timeout-ms", str(timeout_ms),
                 "--profile", profile)

    def check(self, *extra, to=("alice@example.com",), sender="sender@example.org",
              message=None, json_output=False, stdin=None):
        argv = (["--json"] if json_output else []) + [
            "check", "--client-ip", "192.0.2.10", "--helo", "client.example.org", "--from",
            sender]
        for t in to:
            argv += ["--to", t]
        argv += list(extra) + [message or self.msg]
        return self.ctl(*argv, stdin=stdin, check=False)

    def expect(self, code, *extra, **kw):
        p = self.check(*extra, **kw)
        self.assertEqual(p.returncode, code,
                         f"expected exit {code}, got {p.returncode}\nstdout:\n{p.stdout}\n"
                         f"stderr:\n{p.stderr}")
        return p

    def check_json(self, code, *extra, **kw):
        p = self.expect(code, *extra, json_output=True, **kw)
        report = json.loads(p.stdout)
        self.assertEqual(report["verdict"]["exit_code"], code)
        return report

    def call_lines(self, out):
        """The lines of the calls section."""
        lines = out.splitlines()
        start = lines.index("calls:") + 1
        end = next(i for i in range(start, len(lines)) if not lines[i].startswith("  "))
        return lines[start:end]


class EmptyChainTest(CheckCase):

    def test_empty_chain_accepts(self):
        p = self.expect(EXIT_ACCEPT)
        self.assertIn("chain: empty (no enabled plugin for profile 'inbound')", p.stdout)
        self.assertIn("calls: none", p.stdout)
        self.assertIn("symbols: none", p.stdout)
        self.assertIn("score: 0.00", p.stdout)
        self.assertTrue(p.stdout.endswith("verdict: accept (would be relayed to 1 recipient)\n"),
                        p.stdout)
        self.assertEqual(p.stderr, "")

    def test_unknown_profile_is_an_empty_chain(self):
        self.scripted("alpha", "connect=reject", profile="inbound")
        self.expect(EXIT_REJECT)
        p = self.expect(EXIT_ACCEPT, "--profile", "nosuch")
        self.assertIn("chain: empty (no enabled plugin for profile 'nosuch')", p.stdout)

    def test_disabled_plugins_are_not_run(self):
        self.scripted("alpha", "connect=reject")
        self.ctl("policy", "plugin", "disable", "alpha")
        self.expect(EXIT_ACCEPT)

    def test_json_fields(self):
        r = self.check_json(EXIT_ACCEPT, to=("a@example.com", "b@example.com"), sender="")
        self.assertEqual(list(r), ["envelope", "chain", "calls", "recipients", "symbols", "score",
                                   "edits", "verdict"])
        self.assertEqual(r["envelope"]["client_ip"], "192.0.2.10")
        self.assertEqual(r["envelope"]["helo"], "client.example.org")
        self.assertEqual(r["envelope"]["from"], "")
        self.assertEqual(r["envelope"]["to"], ["a@example.com", "b@example.com"])
        self.assertEqual(r["envelope"]["profile"], "inbound")
        self.assertEqual(r["envelope"]["dns_servers"], "none")
        self.assertEqual(r["chain"], [])
        self.assertEqual(r["calls"], [])
        self.assertEqual(r["symbols"], [])
        self.assertEqual(r["score"], 0)
        self.assertEqual(r["edits"], {"headers": [], "envelope": []})
        self.assertEqual(r["verdict"]["action"], "accept")
        self.assertEqual(r["verdict"]["recipients"], ["a@example.com", "b@example.com"])
        self.assertEqual(r["verdict"]["sender"], "")
        self.assertEqual([x["status"] for x in r["recipients"]], ["accepted", "accepted"])


class ScriptedChainTest(CheckCase):

    def test_every_stage_in_the_session_order(self):
        self.scripted("alpha", "")
        r = self.check_json(EXIT_ACCEPT)
        self.assertEqual([c["stage"] for c in r["calls"]],
                         ["connect", "helo", "mail", "rcpt", "data", "header", "eoh", "body",
                          "eom"])
        self.assertTrue(all(c["plugin"] == "alpha" and c["action"] == "continue"
                            for c in r["calls"]))
        self.assertEqual(r["calls"][3]["recipient"], "alice@example.com")
        self.assertTrue(all(isinstance(c["ms"], (int, float)) for c in r["calls"]))

    def test_reject_at_rcpt(self):
        self.scripted("alpha", "rcpt=reject:554:5.7.1:no thanks")
        p = self.expect(EXIT_REJECT)
        self.assertIn("verdict: reject at rcpt <alice@example.com> by alpha: 554 5.7.1 no thanks "
                      "(no recipient accepted)", p.stdout)
        rcpt = [l for l in self.call_lines(p.stdout) if "rcpt" in l]
        self.assertEqual(len(rcpt), 1, p.stdout)
        self.assertRegex(rcpt[0], r"rcpt <alice@example\.com> +alpha +reject +[0-9.]+ ms +"
                         r"554 5\.7\.1 no thanks$")
        # The session stops there: no DATA, no message stages; the transaction is reset.
        stages = [l.split()[0] for l in self.call_lines(p.stdout)]
        self.assertEqual(stages, ["connect", "helo", "mail", "rcpt"])

    def test_every_recipient_refused_the_last_refusal_decides(self):
        self.scripted("alpha", "rcpt=reject:550:5.1.1:unknown user")
        r = self.check_json(EXIT_REJECT, to=("a@example.com", "b@example.com"))
        self.assertEqual([(x["address"], x["status"]) for x in r["recipients"]],
                         [("a@example.com", "reject"), ("b@example.com", "reject")])
        v = r["verdict"]
        self.assertEqual((v["action"], v["stage"], v["recipient"], v["plugin"]),
                         ("reject", "rcpt", "b@example.com", "alpha"))
        self.assertEqual(v["reply"], {"code": 550, "enhanced": "5.1.1", "text": "unknown user"})
        self.assertEqual([c["recipient"] for c in r["calls"] if c["stage"] == "rcpt"],
                         ["a@example.com", "b@example.com"])

    def test_tempfail_and_default_replies(self):
        self.scripted("alpha", "mail=tempfail")
        p = self.expect(EXIT_TEMPFAIL)
        self.assertIn("verdict: tempfail at mail by alpha: 451 4.7.1 Temporarily rejected by "
                      "policy, try again later", p.stdout)

    def test_connect_tempfail_is_421(self):
        self.scripted("alpha", "connect=tempfail")
        r = self.check_json(EXIT_TEMPFAIL)
        self.assertEqual(r["verdict"]["reply"]["code"], 421)
        self.assertEqual([c["stage"] for c in r["calls"]], ["connect"])

    def test_symbols_and_score_summed_and_seen_by_later_plugins(self):
        self.scripted("alpha", "mail=symbol:ALPHA_MAIL:1.5")
        self.scripted("beta", "eom=symbol:BETA_EOM:2.25")
        self.scripted("gamma", "eom=count")  # SEEN_SCORE = the score gamma sees
        p = self.expect(EXIT_ACCEPT)
        self.assertRegex(p.stdout, r"\n  NAME +SCORE +PLUGIN +DETAIL\n")
        self.assertRegex(p.stdout, r"\n  ALPHA_MAIL +1\.50 +alpha +scripted\n")
        self.assertRegex(p.stdout, r"\n  BETA_EOM +2\.25 +beta +scripted\n")
        self.assertRegex(p.stdout, r"\n  SEEN_SCORE +3\.75 +gamma\n")
        self.assertIn("\nscore: 7.50\n", p.stdout)
        r = self.check_json(EXIT_ACCEPT)
        self.assertEqual([(s["name"], s["score"], s["plugin"]) for s in r["symbols"]],
                         [("ALPHA_MAIL", 1.5, "alpha"), ("BETA_EOM", 2.25, "beta"),
                          ("SEEN_SCORE", 3.75, "gamma")])
        self.assertEqual(r["score"], 7.5)
        self.assertEqual(r["chain"], ["alpha", "beta", "gamma"])

    def test_header_edit_shown(self):
        self.scripted("alpha", "eom=header:X-Checked:yes")
        p = self.expect(EXIT_ACCEPT)
        self.assertIn("header edits:\n  + X-Checked: yes\n", p.stdout)
        r = self.check_json(EXIT_ACCEPT)
        self.assertEqual(r["edits"]["headers"], [{"op": "add", "name": "X-Checked",
                                                  "value": "yes"}])

    def test_recipient_rewrite_shown_and_relayed(self):
        self.scripted("alpha", "rcpt=rewrite:bob@example.net")
        p = self.expect(EXIT_ACCEPT)
        self.assertIn("envelope edits:\n  rcpt: recipient <alice@example.com> rewritten to "
                      "<bob@example.net>\n", p.stdout)
        self.assertIn("  <alice@example.com>: accepted as <bob@example.net>\n", p.stdout)
        r = self.check_json(EXIT_ACCEPT)
        self.assertEqual(r["verdict"]["recipients"], ["bob@example.net"])
        self.assertEqual(r["edits"]["envelope"],
                         [{"stage": "rcpt", "op": "rcpt_rewrite", "address": "alice@example.com",
                           "new_address": "bob@example.net"}])

    def test_accept_ends_only_its_stage(self):
        self.scripted("alpha", "rcpt=accept")
        self.scripted("beta", "rcpt=reject;eom=reject:550:5.7.1:spam")
        r = self.check_json(EXIT_REJECT)
        rcpt_calls = [(c["plugin"], c["action"]) for c in r["calls"] if c["stage"] == "rcpt"]
        self.assertEqual(rcpt_calls, [("alpha", "accept")])  # beta skipped at rcpt only
        v = r["verdict"]
        self.assertEqual((v["action"], v["stage"], v["plugin"]), ("reject", "eom", "beta"))
        self.assertEqual(v["text"], "reject at eom by beta: 550 5.7.1 spam")

    def test_discard(self):
        self.scripted("alpha", "data=discard")
        p = self.expect(EXIT_DISCARD)
        self.assertIn("verdict: discard at data by alpha: 250 2.0.0 Ok: discarded "
                      "(nothing is relayed)", p.stdout)

    def test_reject_in_a_message_stage_stops_the_chain(self):
        self.scripted("alpha", "header=reject:554:5.7.0:bad header")
        self.scripted("beta", "")
        r = self.check_json(EXIT_REJECT)
        stages = [(c["stage"], c["plugin"]) for c in r["calls"]]
        self.assertEqual(stages[-1], ("header", "alpha"))
        self.assertNotIn(("eoh", "alpha"), stages)
        self.assertEqual(r["verdict"]["stage"], "header")

    def test_timeout_fail_mode_open(self):
        self.scripted("alpha", "rcpt=sleep:700", fail_mode="open", timeout_ms=100)
        p = self.expect(EXIT_ACCEPT)
        line = next(l for l in self.call_lines(p.stdout) if l.lstrip().startswith("rcpt"))
        self.assertRegex(line, r"alpha +continue +[0-9.]+ ms +\(timed out after 100 ms; "
                         r"fail mode open\)$")
        self.assertIn("verdict: accept (would be relayed to 1 recipient)", p.stdout)

    def test_timeout_fail_mode_tempfail(self):
        self.scripted("alpha", "rcpt=sleep:700", fail_mode="tempfail", timeout_ms=100)
        started = time.monotonic()
        r = self.check_json(EXIT_TEMPFAIL)
        self.assertLess(time.monotonic() - started, 20)
        call = next(c for c in r["calls"] if c["stage"] == "rcpt")
        self.assertEqual(call["action"], "tempfail")
        self.assertEqual(call["note"], "timed out after 100 ms; fail mode tempfail")
        self.assertGreaterEqual(call["ms"], 90)
        self.assertLess(call["ms"], 650)  # the chain did not wait for the plugin
        self.assertEqual(call["reply"], {"code": 451, "enhanced": "4.3.0",
                                         "text": "Temporary filter failure, try again later"})
        self.assertEqual(r["verdict"]["text"],
                         "tempfail at rcpt <alice@example.com> by alpha: 451 4.3.0 Temporary "
                         "filter failure, try again later (no recipient accepted)")

    def test_invalid_action_takes_the_fail_mode(self):
        self.scripted("alpha", "mail=invalid", fail_mode="open")
        p = self.expect(EXIT_ACCEPT)
        self.assertIn("(returned invalid action 99; fail mode open)", p.stdout)

    def test_lf_only_crlf_and_stdin_give_the_same_report(self):
        self.scripted("alpha", "eom=header:X-Checked:yes")
        crlf = self.write("crlf.eml", MESSAGE.replace("\n", "\r\n").encode(), mode="wb")
        reports = []
        for message, stdin in ((self.msg, None), (crlf, None), ("-", MESSAGE)):
            r = self.check_json(EXIT_ACCEPT, message=message, stdin=stdin)
            reports.append((r["edits"], [(c["stage"], c["action"]) for c in r["calls"]]))
        self.assertEqual(reports[0], reports[1])
        self.assertEqual(reports[0], reports[2])

    def test_plugin_dir_resolves_relative_paths(self):
        self.ctl("policy", "plugin", "add", "--name", "alpha", "--path", "tp_alpha.so",
                 "--settings", json.dumps({"script": "helo=reject"}))
        if not os.path.exists(os.path.join(self.tp_dir, "tp_alpha.so")):
            self.skipTest("test plugins not built")
        p = self.expect(EXIT_REJECT, "--plugin-dir", self.tp_dir)
        self.assertIn("verdict: reject at helo by alpha: 550 5.7.1 Rejected by policy", p.stdout)


class AccessPluginTest(CheckCase):
    """The built-in anti-relay plugin, when the build has it."""

    def setUp(self):
        super().setUp()
        self.plugin_dir = builtin_plugin_dir()
        if not os.path.exists(os.path.join(self.plugin_dir, "access.so")):
            self.skipTest(f"{self.plugin_dir}/access.so not built yet")
        self.ctl("policy", "domain", "add", "example.com")
        self.ctl("policy", "plugin", "add", "--name", "access", "--path", "access.so")

    def test_relay_refused_local_accepted(self):
        r = self.check_json(EXIT_ACCEPT, "--plugin-dir", self.plugin_dir,
                            to=("alice@example.com", "someone@elsewhere.test"))
        status = {x["address"]: x for x in r["recipients"]}
        self.assertEqual(status["alice@example.com"]["status"], "accepted")
        self.assertEqual(status["someone@elsewhere.test"]["status"], "reject")
        self.assertEqual(status["someone@elsewhere.test"]["plugin"], "access")
        self.assertEqual(status["someone@elsewhere.test"]["reply"]["code"], 554)
        self.assertEqual(r["verdict"]["recipients"], ["alice@example.com"])

    def test_only_relay_recipients_rejected(self):
        p = self.expect(EXIT_REJECT, "--plugin-dir", self.plugin_dir,
                        to=("someone@elsewhere.test",))
        self.assertIn("verdict: reject at rcpt <someone@elsewhere.test> by access: 554 5.7.1",
                      p.stdout)

    def test_authenticated_client_may_relay(self):
        self.expect(EXIT_ACCEPT, "--plugin-dir", self.plugin_dir, "--auth-user", "alice",
                    to=("someone@elsewhere.test",))


class ErrorTest(CheckCase):

    def usage(self, *argv, contains=()):
        p = self.ctl(*argv, check=False)
        self.assertEqual(p.returncode, EXIT_USAGE, f"{argv}\n{p.stdout}\n{p.stderr}")
        self.assertEqual(p.stdout, "")
        self.assertIn("usage: mailgatectl", p.stderr)
        for text in [contains] if isinstance(contains, str) else contains:
            self.assertIn(text, p.stderr)
        return p.stderr

    def base(self, **drop):
        argv = {"--client-ip": "192.0.2.10", "--from": "s@example.org", "--to": "a@example.com"}
        for k in drop:
            argv.pop("--" + k.replace("_", "-"))
        out = ["check"]
        for k, v in argv.items():
            out += [k, v]
        return out

    def test_missing_options(self):
        self.usage(*self.base(**{"from": 1}), self.msg,
                   contains="missing required option --from ADDR")
        self.usage(*self.base(to=1), self.msg, contains="missing required option --to ADDR")
        self.usage(*self.base(client_ip=1), self.msg,
                   contains="missing required option --client-ip IP")
        self.usage(*self.base(), contains="missing argument FILE")

    def test_bad_values_name_the_option(self):
        cases = [
            (["--client-ip", "999.1.1.1"], "--client-ip: '999.1.1.1' is not an IP address"),
            (["--client-ip", "mail.example.org"], "--client-ip: "),
            (["--from", "not an address"], "--from: "),
            (["--to", "<>"], "--to: "),
            (["--helo", "bad helo"], "--helo: "),
            (["--profile", "a b"], "--profile: "),
            (["--profile", "*"], "--profile: "),
            (["--dns-servers", "dns.example"], "--dns-servers: "),
            (["--dns-timeout-ms", "0"], "--dns-timeout-ms: must be from 1 to 300000"),
            (["--dns-timeout-ms", "x"], "--dns-timeout-ms: 'x' is not an integer"),
            (["--client-name", ""], "--client-name: "),
            (["--auth-user", ""], "--auth-user: "),
        ]
        for extra, message in cases:
            with self.subTest(extra=extra):
                self.usage(*self.base(), *extra, self.msg, contains=message)

    def test_unreadable_file(self):
        missing = os.path.join(self.dir, "nope.eml")
        self.usage(*self.base(), missing,
                   contains=f"FILE: cannot read '{missing}': No such file or directory")
        self.usage(*self.base(), self.dir, contains="FILE: cannot read")

    def test_unknown_option_and_extra_argument(self):
        self.usage(*self.base(), "--bogus", "x", self.msg, contains="unknown option '--bogus'")
        self.usage(*self.base(), self.msg, "extra", contains="unexpected argument 'extra'")

    def test_missing_database(self):
        p = subprocess.run([self.bin, "--db", os.path.join(self.dir, "none.db")] + self.base() +
                           [self.msg], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, EXIT_FAILURE, p.stderr)
        self.assertIn("does not exist", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_plugin_load_failures(self):
        self.ctl("policy", "plugin", "add", "--name", "ghost", "--path",
                 os.path.join(self.dir, "ghost.so"))
        p = self.ctl(*self.base(), self.msg, check=False)
        self.assertEqual(p.returncode, EXIT_FAILURE, p.stderr)
        self.assertIn("mailgatectl: error: profile 'inbound': ", p.stderr)
        self.assertIn("ghost.so", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_plugin_create_failure(self):
        self.ctl("policy", "plugin", "add", "--name", "alpha", "--path",
                 os.path.join(self.tp_dir, "tp_alpha.so"), "--settings", '{"fail": true}')
        if not os.path.exists(os.path.join(self.tp_dir, "tp_alpha.so")):
            self.skipTest("test plugins not built")
        p = self.ctl(*self.base(), self.msg, check=False)
        self.assertEqual(p.returncode, EXIT_FAILURE, p.stderr)
        self.assertIn("plugin 'alpha': create failed: refusing to start: settings say fail",
                      p.stderr)

    def test_help_documents_the_exit_codes(self):
        p = self.ctl("check", "--help")
        self.assertIn("exit 0 accept, 3 reject, 4 tempfail, 5 discard", p.stdout)
        self.assertIn("--dns-servers LIST", p.stdout)


if __name__ == "__main__":
    unittest.main()
