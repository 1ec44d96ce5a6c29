"""Live policy changes under traffic, through the real gateway in front of a real Postfix.

Owns: "a live policy change under traffic takes effect without a dropped connection". While
one client keeps a single SMTP connection open and sends messages in a loop, another process
(mailgatectl) changes the policy database; the gateway polls it every 100 ms.

What the gateway does, as observed and asserted here:
  * Access data (rules, domains, networks) is read through the SDK's policy_lookup, which
    answers from the gateway's *current* snapshot. So a rule change applies to the next
    command of every session, the already open ones included, within one poll interval plus
    the reload (asserted: < 2 s), and stays applied (no flapping back to the old answer).
  * The plugin *chain* is fixed per session at connect: disabling a plugin (or adding one)
    only changes new connections; the open session keeps running the chain it started with.
  * The open connection is never dropped and no accepted message is lost: every message that
    got 250 at end of data is in the Postfix maildir, exactly once.
  * A broken hand edit (a bad CIDR written with Python's sqlite3, CHECKs bypassed) is refused
    as a whole: the gateway logs the offending row and keeps the previous policy, including
    the parts of the same transaction that were valid; fixing the row loads the new policy.
  * An edit whose chain cannot be built (a plugin .so that does not load) keeps the running
    chain and is logged; the rest of that edit does not apply either (plugins' policy lookups
    read the snapshot the running chain was built from).
  * SIGHUP reloads at once, even with the poll interval set to an hour.
"""

import os
import re
import signal
import time
import unittest
import uuid

from mgtest import base, util
from mgtest.policyctl import PolicyCtl, log_mark, wait_policy_applied
from mgtest.smtpclient import message_data
from mgtest.traffic import Sender

LIVE_DEADLINE = 2.0  # seconds from mailgatectl's exit to the change being seen by clients


def deny_rule(pattern, text, stage="sender_domain"):
    return ["policy", "access", "add", "--stage", stage, "--pattern", pattern, "--action",
            "deny", "--code", "550", "--enhanced", "5.7.1", "--text", text]


def added_id(out):
    """The rule id from "added access rule 7: ..."."""
    return out.split()[3].rstrip(":")


class PolicyLiveTest(base.PostfixCase):
    def policy(self):
        d = util.make_tempdir("mailgate-live-policy-")
        self.addCleanup(util.remove_tree, d)
        ctl = PolicyCtl(os.path.join(d, "policy.db"))
        ctl.init()
        ctl("policy", "domain", "add", base.DOMAIN)
        ctl("policy", "plugin", "add", "--name", "access", "--path", "access.so",
            "--timeout-ms", "1000")
        return ctl

    def gateway(self, ctl, poll_ms=100, flags=()):
        gw = self.start_gateway(flags=[f"--policy_db={ctl.db}", f"--policy_poll_ms={poll_ms}",
                                       *flags])
        gw.wait_for_log(r"plugin chains ready")
        return gw

    def subjects_delivered(self):
        out = []
        for m in self.postfix.messages(base.USER):
            for line in m.replace(b"\r\n", b"\n").split(b"\n"):
                if line.lower().startswith(b"subject:"):
                    out.append(line.split(b":", 1)[1].strip().decode())
                    break
        return out

    def assert_all_accepted_delivered(self, senders):
        accepted = [e[3] for s in senders for e in s.snapshot() if e[2] == 250]
        util.wait_until(lambda: set(accepted) <= set(self.subjects_delivered()), 30,
                        what=f"delivery of {len(accepted)} accepted messages")
        delivered = self.subjects_delivered()
        for subject in accepted:
            self.assertEqual(delivered.count(subject), 1, f"{subject} delivered "
                             f"{delivered.count(subject)} times")
        return accepted

    # ---------------------------------------------------------------------------------------
    def test_rule_change_under_traffic_applies_to_the_open_connection_without_dropping_it(self):
        ctl = self.policy()
        # The loop collects many 550s while the rule is on; the gateway's error limit (20 by
        # default, then 421 and disconnect, as Postfix's smtpd_hard_error_limit) must not be
        # what ends the connection here.
        gw = self.gateway(ctl, flags=["--max_errors=100000"])
        tag = f"live-{uuid.uuid4().hex[:8]}"
        loop = Sender(self, gw, "loop@live.example", tag)
        loop.start()
        self.addCleanup(loop.stop)
        loop.wait_for(lambda e: e[2] == 250 and int(e[3].rsplit("-", 1)[1]) >= 5, 20,
                      "5 messages accepted before the change")

        # 1. A deny rule for the sender's domain, added by another process.
        out = ctl(*deny_rule("live.example", "Live block"))
        changed = time.monotonic()
        first_denied = loop.wait_for(lambda e: e[0] > changed and e[1] == 550, 5,
                                     "the open connection to see the new rule")
        self.assertLess(first_denied[0] - changed, LIVE_DEADLINE)
        # A new connection sees it too.
        c = self.connect(gw, source_address=("127.0.0.2", 0))
        c.cmd("EHLO new.example")
        self.assertEqual(c.cmd("MAIL FROM:<other@live.example>").wire, "550 5.7.1 Live block")
        c.quit()
        loop.wait_for(lambda e: e[0] > first_denied[0] + 0.3 and e[1] == 550, 5,
                      "more refusals after the first")

        # 2. The rule removed again.
        ctl("policy", "access", "remove", added_id(out))
        removed = time.monotonic()
        back = loop.wait_for(lambda e: e[0] > removed and e[2] == 250, 5,
                             "the open connection to be accepted again")
        self.assertLess(back[0] - removed, LIVE_DEADLINE)
        loop.wait_for(lambda e: e[0] > back[0] + 0.3 and e[2] == 250, 5, "more messages")
        loop.stop()

        self.assertIsNone(loop.error, f"the looping connection failed: {loop.error!r}")
        self.assertEqual(loop.quit_reply.code, 221, "the connection was open to the end")
        # accepted... refused... accepted: each change is seen once and for good.
        pattern = "".join("A" if e[2] == 250 else "D" if e[1] == 550 else "?"
                          for e in loop.snapshot())
        self.assertRegex(pattern, r"^A+D+A+$")
        accepted = self.assert_all_accepted_delivered([loop])
        self.assertGreaterEqual(len(accepted), 10)
        # All of it in one session: every transaction the gateway logged has the same session.
        sessions = {l.split(": ", 1)[1].split(".", 1)[0] for l in gw.transaction_lines()}
        self.assertEqual(len(sessions), 1, sessions)
        self.assertEqual(len(gw.transaction_lines()), len(accepted))

    def test_chain_change_applies_to_new_connections_only(self):
        ctl = self.policy()
        gw = self.gateway(ctl)
        outside = f"chain-{uuid.uuid4().hex[:8]}@outside.example"
        old = self.connect(gw, source_address=("127.0.0.2", 0))
        self.assertEqual(old.cmd("EHLO old.example").code, 250)

        mark = log_mark(gw)
        ctl("policy", "plugin", "disable", "access")
        wait_policy_applied(gw, mark)
        gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 0 plugin instances\)", start=mark)

        # The session opened before the change still runs `access`: relaying is refused.
        self.assertEqual(old.cmd("MAIL FROM:<>").code, 250)
        self.assertEqual(old.cmd(f"RCPT TO:<{outside}>").wire,
                         f"554 5.7.1 <{outside}>: Relay access denied")
        self.assertEqual(old.cmd("RSET").code, 250)
        # A new session has no plugin: the recipient goes to Postfix, which answers itself.
        new = self.connect(gw, source_address=("127.0.0.2", 0))
        self.assertEqual(new.cmd("EHLO new.example").code, 250)
        self.assertEqual(new.cmd("MAIL FROM:<>").code, 250)
        r = new.cmd(f"RCPT TO:<{outside}>")
        self.assertEqual(r.code, 550, r)
        self.assertIn("Recipient address rejected", r.text)
        new.quit()

        # The old session still works, and delivers.
        subject = f"old-session-{uuid.uuid4().hex[:8]}"
        self.assertEqual(old.cmd("MAIL FROM:<a@elsewhere.example>").code, 250)
        self.assertEqual(old.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        self.assertEqual(old.cmd("DATA").code, 354)
        self.assertEqual(old.data(message_data(f"Subject: {subject}\r\n\r\nx\r\n")).code, 250)
        self.assertEqual(old.cmd("QUIT").code, 221)
        util.wait_until(lambda: subject in self.subjects_delivered(), 20, what=subject)

        # Enabled again: new sessions refuse relaying again.
        mark = log_mark(gw)
        ctl("policy", "plugin", "enable", "access")
        wait_policy_applied(gw, mark)
        again = self.connect(gw, source_address=("127.0.0.2", 0))
        again.cmd("EHLO again.example")
        again.cmd("MAIL FROM:<>")
        self.assertEqual(again.cmd(f"RCPT TO:<{outside}>").code, 554)
        again.quit()

    def test_broken_edit_keeps_the_old_policy_and_names_the_row(self):
        ctl = self.policy()
        out = ctl(*deny_rule("kept.example", "Old rule still applies"))
        gw = self.gateway(ctl)
        c = self.connect(gw, source_address=("127.0.0.2", 0))
        c.cmd("EHLO broken.example")
        self.assertEqual(c.cmd("MAIL FROM:<x@kept.example>").wire,
                         "550 5.7.1 Old rule still applies")

        # One hand-made transaction: removes the rule (valid) and adds a bad network (invalid).
        mark = log_mark(gw)
        ctl.hand_edit_script(f"""
            BEGIN;
            DELETE FROM access WHERE id = {added_id(out)};
            INSERT INTO relay_networks (cidr, comment) VALUES ('10.0.0.0/33', 'typo');
            COMMIT;""")
        m = gw.wait_for_log(r"policy: reload of .* refused, keeping snapshot (\d+): (.*)",
                            start=mark)
        self.assertIn("10.0.0.0/33", m.group(2))
        self.assertRegex(m.group(2), r"relay_networks row")
        time.sleep(0.5)  # several poll intervals: the bad edit is not retried and not half-applied
        self.assertEqual(c.cmd("MAIL FROM:<x@kept.example>").wire,
                         "550 5.7.1 Old rule still applies")
        fresh = self.connect(gw, source_address=("127.0.0.2", 0))
        fresh.cmd("EHLO fresh.example")
        self.assertEqual(fresh.cmd("MAIL FROM:<x@kept.example>").code, 550)
        fresh.quit()
        self.assertEqual(len(re_find(gw, r"policy: reload of .* refused", mark)), 1,
                         "a failed reload is logged once, not at every poll")

        # Fixed by hand: the new policy (without the rule) loads; the same connection sees it.
        mark = log_mark(gw)
        ctl.hand_edit("DELETE FROM relay_networks WHERE cidr = '10.0.0.0/33'")
        wait_policy_applied(gw, mark)
        self.assertEqual(c.cmd("MAIL FROM:<x@kept.example>").code, 250)
        self.assertEqual(c.cmd("QUIT").code, 221)

    def test_edit_with_a_plugin_that_cannot_load_is_refused_as_a_whole(self):
        # One transaction adds an access rule (valid) and a chain entry whose .so does not
        # exist. The gateway keeps its running chain and logs why; the rule from the same
        # edit must not apply either, or the running policy is half old, half new.
        ctl = self.policy()
        gw = self.gateway(ctl)
        mark = log_mark(gw)
        ctl.hand_edit_script("""
            BEGIN;
            INSERT INTO access (stage, pattern, action, text)
                VALUES ('sender_domain', 'half.example', 'deny', 'Half applied');
            INSERT INTO plugins (position, name, path) VALUES (2, 'ghost', '/nonexistent/ghost.so');
            COMMIT;""")
        m = gw.wait_for_log(r"plugin chain not rebuilt, keeping the running one: (.*)",
                            start=mark)
        self.assertIn("plugin 'ghost' (/nonexistent/ghost.so): cannot load", m.group(1))
        c = self.connect(gw, source_address=("127.0.0.2", 0))
        c.cmd("EHLO half.example")
        r = c.cmd("MAIL FROM:<x@half.example>")
        self.assertEqual(r.code, 250, f"the refused edit's access rule applies: {r}")
        c.quit()

    def test_sighup_reloads_at_once(self):
        ctl = self.policy()
        gw = self.gateway(ctl, poll_ms=3600000)  # the watcher would wait an hour
        c = self.connect(gw, source_address=("127.0.0.2", 0))
        c.cmd("EHLO hup.example")
        self.assertEqual(c.cmd("MAIL FROM:<x@hup.example>").code, 250)
        self.assertEqual(c.cmd("RSET").code, 250)

        ctl(*deny_rule("hup.example", "Applied by SIGHUP"))
        time.sleep(0.5)
        self.assertEqual(c.cmd("MAIL FROM:<x@hup.example>").code, 250, "no poll yet")
        self.assertEqual(c.cmd("RSET").code, 250)

        mark = log_mark(gw)
        gw.signal(signal.SIGHUP)
        gw.wait_for_log(r"policy: reloaded", start=mark, timeout=5)
        wait_policy_applied(gw, mark, timeout=5)
        self.assertEqual(c.cmd("MAIL FROM:<x@hup.example>").wire, "550 5.7.1 Applied by SIGHUP")
        self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertTrue(gw.running())


def re_find(gw, pattern, start):
    rx = re.compile(pattern)
    return [l for l in gw.log_lines()[start:] if rx.search(l)]


if __name__ == "__main__":
    unittest.main()
