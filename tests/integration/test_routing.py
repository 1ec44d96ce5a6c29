"""The `routing` plugin (plugins/routing/) in the real gateway in front of a real Postfix that
delivers into maildirs: custom addresses on the gateway's port reach the mailboxes they are
routed to — one destination, several, a wildcard, a catch-all, drop — with the message's header
and body byte-identical to what the client sent (only the envelope changes: the trace fields
Return-Path, X-Original-To, Delivered-To and the two Received lines are all that is added). Forwards to a
non-local domain carry an SRS envelope sender; a bounce to that SRS address (null sender) is
delivered to the original sender, a tampered one is refused with 550 5.1.1, a non-bounce with
550 5.7.1. Routes change live through mailgatectl, and `policy route` validates what it stores.

Domains: example.test holds the custom addresses (local, no mailbox of its own), inside.test
is local with mailboxes, fwd.test is the local SRS domain; outside.test and orig.test are not
local to the gateway (Postfix still has mailboxes there, so the forwarded copy and the reversed
bounce can be read back).
"""

import json
import os
import re
import uuid

from mgtest import base, util
from mgtest.policyctl import PolicyCtl, builtin_plugin, log_mark, wait_policy_applied
from mgtest.smtpclient import message_data

SECRET = "integration-secret-0123456789"
SENDER = "alice@orig.test"
TRACE = (b"Return-Path:", b"X-Original-To:", b"Delivered-To:", b"Received:")


def token():
    return uuid.uuid4().hex[:12]


def message(subject):
    """A message with the fields Postfix would otherwise add (so it adds none) and a body with
    what transports like to touch: a leading dot, trailing spaces, tabs, a long line, 8-bit."""
    return (f"From: Alice <{SENDER}>\r\n"
            f"To: Info <info@example.test>\r\n"
            f"Subject: {subject}\r\n"
            f"Date: Sun, 22 Nov 2026 06:00:00 +0000\r\n"
            f"Message-ID: <{subject}@orig.test>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n"
            "X-Folded: first part\r\n"
            "\tsecond part\r\n"
            "\r\n"
            ".a line that starts with a dot\r\n"
            "trailing spaces   \r\n"
            "\ttab\tseparated\r\n"
            + "x" * 900 + "\r\n"
            "caf\u00e9 \u2014 8-bit text\r\n").encode("utf-8")


def split_trace(delivered):
    """(the trace fields at the top, the rest) of a delivered maildir file (LF line ends)."""
    lines = delivered.split(b"\n")
    i = 0
    fields = []
    while i < len(lines) and lines[i].startswith(TRACE):
        field = lines[i]
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            field += b"\n" + lines[i]
            i += 1
        fields.append(field)
    return fields, b"\n".join(lines[i:])


class RoutingTest(base.PostfixCase):
    postfix_domains = ("example.test", "inside.test", "outside.test", "orig.test")
    postfix_users = ("one@inside.test", "two@inside.test", "sales@inside.test",
                     "catch@inside.test", "three@outside.test", "alice@orig.test")

    def setUp(self):
        builtin_plugin("routing")
        builtin_plugin("access")
        d = util.make_tempdir("mailgate-routing-")
        self.addCleanup(util.remove_tree, d)
        self.ctl = PolicyCtl(os.path.join(d, "policy.db"))
        self.ctl.init()
        for domain in ("example.test", "inside.test", "fwd.test"):
            self.ctl("policy", "domain", "add", domain)
        # access first (anti-relay judges the address the client gave), routing last.
        self.ctl("policy", "plugin", "add", "--name", "access", "--path", "access.so")
        self.ctl("policy", "plugin", "add", "--name", "routing", "--path", "routing.so",
                 "--settings", f'{{"srs_domain": "fwd.test", "srs_secrets": ["{SECRET}"]}}')
        self.ctl("policy", "route", "add", "info@example.test", "one@inside.test")
        self.ctl("policy", "route", "add", "team@example.test",
                 "two@inside.test, three@outside.test")
        self.ctl("policy", "route", "add", "sales-*@example.test", "sales@inside.test")
        self.ctl("policy", "route", "add", "@example.test", "catch@inside.test")
        self.ctl("policy", "route", "add", "trap-*@example.test", "drop")
        self.ctl("policy", "route", "add", "broken@example.test",
                 "nobody@inside.test,two@inside.test")
        self.gw = self.start_gateway(flags=[f"--policy_db={self.ctl.db}", "--policy_poll_ms=100"])
        self.gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 2 plugin instances\)")

    def send(self, rcpts, body, sender=SENDER):
        """One transaction; returns (RCPT replies, final reply or None)."""
        c = self.connect(self.gw)
        self.assertEqual(c.cmd("EHLO client.example").code, 250)
        self.assertEqual(c.cmd(f"MAIL FROM:<{sender}>").code, 250)
        replies = [c.cmd(f"RCPT TO:<{r}>") for r in rcpts]
        final = None
        if any(r.code == 250 for r in replies):
            self.assertEqual(c.cmd("DATA").code, 354)
            final = c.data(message_data(body))
        c.quit()
        return replies, final

    def one_message(self, mailbox, subject):
        """The one message with that subject in `mailbox`, waiting for it."""
        def find():
            found = [m for m in self.postfix.messages(mailbox)
                     if f"Subject: {subject}".encode() in m]
            return found or None
        found = util.wait_until(find, 20, what=f"{subject} in {mailbox}\n"
                                f"{self.postfix.maillog()[-3000:]}")
        self.assertEqual(len(found), 1, f"{mailbox}: {len(found)} copies")
        return found[0]

    def assert_untouched(self, delivered, sent, mailbox, return_path):
        """Only trace fields were added; header and body are the bytes sent."""
        fields, rest = split_trace(delivered)
        self.assertEqual(rest, sent.replace(b"\r\n", b"\n"), f"{mailbox}: content changed")
        names = [f.split(b":", 1)[0] for f in fields]
        self.assertEqual(names, [b"Return-Path", b"X-Original-To", b"Delivered-To", b"Received",
                                 b"Received"], fields)
        self.assertEqual(fields[0], f"Return-Path: <{return_path}>".encode())
        # Postfix saw the routed address as the recipient: only the envelope changed.
        self.assertEqual(fields[1], f"X-Original-To: {mailbox}".encode())
        self.assertEqual(fields[2], f"Delivered-To: {mailbox}".encode())
        self.assertIn(b"(mailgate)", fields[4])  # the gateway's own line, below Postfix's

    def test_one_local_destination(self):
        subject = f"route-one-{token()}"
        body = message(subject)
        replies, final = self.send(["info@example.test"], body)
        self.assertEqual(replies[0].code, 250, replies[0])
        self.assertEqual(final.code, 250, final)
        got = self.one_message("one@inside.test", subject)
        # A local destination: the sender stays as it was.
        self.assert_untouched(got, body, "one@inside.test", SENDER)
        self.gw.wait_for_log(r"routing: <info@example\.test> -> <one@inside\.test> "
                             r"\(route 'info@example\.test'\)")

    def test_several_destinations_and_srs_forward_then_bounce_back(self):
        subject = f"route-team-{token()}"
        body = message(subject)
        replies, final = self.send(["Team@Example.test"], body)
        self.assertEqual(replies[0].code, 250, replies[0])
        self.assertEqual(final.code, 250, final)
        inside = self.one_message("two@inside.test", subject)
        outside = self.one_message("three@outside.test", subject)
        srs = re.match(rb"Return-Path: <(SRS0=[^=]{4}=[A-Z2-7]{2}=orig\.test=alice@fwd\.test)>",
                       outside)
        self.assertIsNotNone(srs, outside[:300])
        srs = srs.group(1).decode()
        # One envelope: the SRS sender applies to the local copy too.
        self.assert_untouched(inside, body, "two@inside.test", srs)
        self.assert_untouched(outside, body, "three@outside.test", srs)

        # The destination's server bounces to the SRS address: it goes back to alice.
        bounce_subject = f"bounce-{token()}"
        bounce = (f"From: MAILER-DAEMON@outside.test\r\nTo: {srs}\r\n"
                  f"Subject: {bounce_subject}\r\nDate: Sun, 22 Nov 2026 06:01:00 +0000\r\n"
                  f"Message-ID: <{bounce_subject}@outside.test>\r\n\r\n"
                  "Delivery failed.\r\n").encode()
        replies, final = self.send([srs], bounce, sender="")
        self.assertEqual(replies[0].code, 250, replies[0])
        self.assertEqual(final.code, 250, final)
        got = self.one_message("alice@orig.test", bounce_subject)
        self.assert_untouched(got, bounce, "alice@orig.test", "")
        self.gw.wait_for_log(r"routing: SRS <" + re.escape(srs) + r"> reversed to "
                             r"<alice@orig\.test>")

        # A forged hash, a non-bounce, and an address of a forwarder that is not us.
        forged = srs.replace(srs[5:9], "AAAA" if srs[5:9] != "AAAA" else "BBBB", 1)
        r, _ = self.send([forged], bounce, sender="")
        self.assertEqual((r[0].code, r[0].enhanced), (550, "5.1.1"), r[0])
        self.assertIn("bad SRS hash", r[0].text)
        r, _ = self.send([srs], bounce, sender="someone@outside.test")
        self.assertEqual((r[0].code, r[0].enhanced), (550, "5.7.1"), r[0])

    def test_wildcard_catch_all_and_precedence(self):
        subject = f"route-wild-{token()}"
        body = message(subject)
        replies, final = self.send(["sales-eu@example.test", "nobody-known@example.test"], body)
        self.assertEqual([r.code for r in replies], [250, 250], replies)
        self.assertEqual(final.code, 250, final)
        self.assert_untouched(self.one_message("sales@inside.test", subject), body,
                              "sales@inside.test", SENDER)
        self.assert_untouched(self.one_message("catch@inside.test", subject), body,
                              "catch@inside.test", SENDER)
        # Exact beats the catch-all: info@ is not in catch@'s mailbox.
        subject2 = f"route-exact-{token()}"
        self.send(["info@example.test"], message(subject2))
        self.one_message("one@inside.test", subject2)
        self.assertFalse(any(f"Subject: {subject2}".encode() in m
                             for m in self.postfix.messages("catch@inside.test")))

    def test_drop_only_that_recipient(self):
        subject = f"route-drop-{token()}"
        body = message(subject)
        replies, final = self.send(["trap-1@example.test", "info@example.test"], body)
        self.assertEqual([(r.code, r.enhanced) for r in replies], [(250, "2.1.5"), (250, "2.1.5")])
        self.assertEqual(final.code, 250, final)
        self.one_message("one@inside.test", subject)
        self.gw.wait_for_log(r"recipient <trap-1@example\.test> dropped by a plugin")
        # Every recipient dropped: accepted, discarded, nothing reaches Postfix.
        subject = f"route-drop-all-{token()}"
        replies, final = self.send(["trap-2@example.test"], message(subject))
        self.assertEqual(replies[0].code, 250, replies[0])
        self.assertEqual(final.code, 250, final)
        self.gw.wait_for_log(r"nrcpt=0 .*status=discarded .*plugin=rcpt-drop")
        self.assertNotIn(subject, self.postfix.maillog())

    def test_refused_first_destination_takes_the_others_with_it(self):
        # Postfix has no nobody@inside.test: the client gets its refusal for broken@, and
        # two@inside.test (the route's other destination) does not get the message.
        subject = f"route-broken-{token()}"
        replies, final = self.send(["broken@example.test", "info@example.test"], message(subject))
        self.assertEqual([r.code for r in replies], [550, 250], replies)
        self.assertEqual(final.code, 250, final)
        self.one_message("one@inside.test", subject)
        self.assertFalse(any(f"Subject: {subject}".encode() in m
                             for m in self.postfix.messages("two@inside.test")))

    def test_relay_is_still_refused_and_routes_change_live(self):
        # Not a local domain: access refuses before routing is asked.
        r, _ = self.send(["someone@outside.test"], message(f"relay-{token()}"))
        self.assertEqual((r[0].code, r[0].enhanced), (554, "5.7.1"), r[0])
        mark = log_mark(self.gw)
        self.ctl("policy", "route", "add", "new@example.test", "two@inside.test")
        wait_policy_applied(self.gw, mark)
        subject = f"route-live-{token()}"
        self.send(["new@example.test"], message(subject))
        self.one_message("two@inside.test", subject)

    def test_mailgatectl_check_shows_routes(self):
        d = util.make_tempdir("mailgate-routing-check-")
        self.addCleanup(util.remove_tree, d)
        path = os.path.join(d, "m.eml")
        with open(path, "wb") as f:
            f.write(message(f"check-{token()}"))
        plugin_dir = os.path.dirname(builtin_plugin("routing"))
        common = ("--json", "check", "--client-ip", "127.0.0.1", "--plugin-dir", plugin_dir,
                  "--from", SENDER)
        p = self.ctl.run(*common, "--to", "team@example.test", "--to", "trap-1@example.test",
                         path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        report = json.loads(p.stdout)
        status = {r["address"]: (r["status"], r["relayed_as"]) for r in report["recipients"]}
        self.assertEqual(status, {"team@example.test": ("accepted", "two@inside.test"),
                                  "trap-1@example.test": ("dropped", "")})
        # Only dropped recipients: the message is taken and discarded (exit 5).
        p = self.ctl.run(*common, "--to", "trap-2@example.test", path)
        self.assertEqual(p.returncode, 5, p.stdout + p.stderr)

    def test_mailgatectl_route(self):
        self.assertEqual(self.ctl("policy", "route", "test", "Sales-X@example.test").strip(),
                         "<Sales-X@example.test> -> <sales@inside.test> "
                         "(route 'sales-*@example.test')")
        self.assertEqual(self.ctl("policy", "route", "test", "trap-9@example.test").strip(),
                         "<trap-9@example.test>: dropped (route 'trap-*@example.test')")
        self.assertEqual(self.ctl("policy", "route", "test", "x@inside.test").strip(),
                         "<x@inside.test>: no route (delivered as addressed)")
        listing = self.ctl("--json", "policy", "route", "list")
        self.assertIn('"pattern":"team@example.test"', listing.replace(" ", ""))
        p = self.ctl.run("policy", "route", "add", "a*b*@example.test", "one@inside.test")
        self.assertEqual(p.returncode, 1)
        self.assertIn("PATTERN: 'a*b*@example.test' is not a route pattern: at most one '*'",
                      p.stderr)
        p = self.ctl.run("policy", "route", "add", "info@example.test", "drop")
        self.assertEqual(p.returncode, 1)
        self.assertIn("pattern 'info@example.test' has 'drop' and other destinations", p.stderr)
        p = self.ctl.run("policy", "route", "add", "x@example.test", "drop,one@inside.test")
        self.assertEqual(p.returncode, 1)
        self.assertIn("'drop' must be the only destination", p.stderr)
        self.assertIn("removed 1 route row of 'team@example.test'",
                      self.ctl("policy", "route", "remove", "team@example.test",
                               "three@outside.test"))
        self.assertIn("removed 1 route row of 'team@example.test'",
                      self.ctl("policy", "route", "remove", "TEAM@example.test"))
        p = self.ctl.run("policy", "route", "remove", "team@example.test")
        self.assertEqual(p.returncode, 1)
        self.assertIn("PATTERN: no route 'team@example.test'", p.stderr)
