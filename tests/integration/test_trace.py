"""The message trace (--trace_db, gateway/obs/trace_*) and `mailgatectl trace`, end to end: a
gateway with the access and spamscore plugins in front of a real Postfix writes every
transaction into SQLite (WAL) from its writer thread; mailgatectl finds an accepted message by
Message-ID, sender, recipient, client address, queue id (the one Postfix logged) and time
range, with its symbols, plugin actions, score, verdict and backend reply; a message refused at
end of data and a recipient refused at RCPT are found with the plugin that decided; --json is
one array; a recipient the backend refuses is found with the backend's reply; bad options are usage errors that name the option."""

import json
import os
import re
import subprocess
import unittest
import uuid

from mgtest import base, util
from mgtest.obsclient import BLOCKED, GTUBE, policy_with_plugins, send
from mgtest.policyctl import ctl_path


class TraceTest(base.PostfixCase):

    def trace(self, db, *args, check=True):
        p = subprocess.run([ctl_path(), "trace", "--trace-db", db, *args], capture_output=True,
                           text=True, timeout=30, check=False)
        if check:
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p

    def trace_json(self, db, *args):
        return json.loads(self.trace(db, "--json", *args).stdout)

    def wait_traced(self, db, *args, n=1):
        """The records matching args, once at least n are written (the writer batches)."""
        out = []

        def found():
            nonlocal out
            if not os.path.exists(db):
                return False
            p = self.trace(db, "--json", *args, check=False)
            if p.returncode != 0:
                return False
            out = json.loads(p.stdout)
            return len(out) >= n
        util.wait_until(found, 10, what=f"trace records for {args}")
        return out

    def test_trace_finds_messages_with_their_reasons(self):
        ctl = policy_with_plugins(self)
        d = util.make_tempdir("mailgate-trace-")
        self.addCleanup(util.remove_tree, d)
        db = os.path.join(d, "trace.db")
        gw = self.start_gateway(flags=[f"--policy_db={ctl.db}", f"--trace_db={db}"])
        gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 2 plugin instances\)")
        gw.wait_for_log(r"trace: writing transactions to ")

        tag = uuid.uuid4().hex[:10]
        sender = f"sender-{tag}@example.org"
        _, final = send(self, gw, f"trace-ok-{tag}", sender=sender,
                        rcpts=(base.USER, f"other@{base.DOMAIN}"))
        self.assertEqual(final.code, 250, final)
        queue_id = re.search(r"queued as (\w+)", final.text).group(1)
        _, gtube = send(self, gw, f"trace-gtube-{tag}", body=f"{GTUBE}\r\n", source="127.0.0.5")
        self.assertEqual(gtube.code, 550)
        rcpt, _ = send(self, gw, f"trace-blocked-{tag}", rcpts=(BLOCKED,))
        self.assertEqual(rcpt[0].code, 554)

        # The accepted message, by its Message-ID: envelope, queue id, reply, plugin actions.
        [r] = self.wait_traced(db, "--message-id", f"<trace-ok-{tag}@example.org>")
        self.assertEqual(r["status"], "accepted")
        self.assertEqual(r["stage"], "data")
        self.assertEqual(r["sender"], sender)
        self.assertEqual(r["recipients"], [base.USER, f"other@{base.DOMAIN}"])
        self.assertEqual(r["client_ip"], "127.0.0.2")
        self.assertEqual(r["helo"], "client.example")
        self.assertEqual(r["queue_id"], queue_id)
        util.wait_until(lambda: f"{queue_id}: " in self.postfix.maillog(), 10,
                        what=f"Postfix logging queue id {queue_id}")  # Postfix's own id
        self.assertTrue(r["reply"].startswith("250 "), r)
        self.assertGreater(r["size"], 0)
        stages = {(a["plugin"], a["stage"], a["action"]) for a in r["actions"]}
        self.assertIn(("access", "rcpt", "continue"), stages)
        self.assertIn(("spamscore", "eom", "continue"), stages)
        # The same message by every other key.
        for args in (("--from", sender.upper()), ("--to", f"other@{base.DOMAIN}"),
                     ("--queue-id", queue_id), ("--client-ip", "127.0.0.2", "--from", sender),
                     ("--since", "10m", "--from", sender),
                     ("--status", "accepted", "--from", sender)):
            found = self.trace_json(db, *args)
            self.assertEqual([x["id"] for x in found], [r["id"]], args)
        self.assertEqual(self.trace_json(db, "--until", "2000-01-01", "--from", sender), [])

        # GTUBE: refused at end of data by spamscore, with its symbol and score.
        [g] = self.wait_traced(db, "--message-id", f"trace-gtube-{tag}@example.org")
        self.assertEqual((g["status"], g["decided_by"], g["client_ip"]),
                         ("rejected", "spamscore", "127.0.0.5"))
        self.assertIn("GTUBE", [s["name"] for s in g["symbols"]])
        self.assertGreaterEqual(g["score"], 1000)
        self.assertTrue(g["reply"].startswith("550 5.7.1 "), g)
        self.assertEqual(g["queue_id"], "")
        self.assertIn({"plugin": "spamscore", "stage": "eom", "action": "reject"},
                      [{k: a[k] for k in ("plugin", "stage", "action")} for a in g["actions"]])

        # The recipient refused at RCPT by the access plugin.
        [b] = self.wait_traced(db, "--to", BLOCKED)
        self.assertEqual((b["status"], b["stage"], b["decided_by"]), ("rejected", "rcpt", "access"))
        self.assertIn("blocked by the obs test", b["reply"])

        # A recipient Postfix does not know: refused by the backend, found with its reply.
        rcpt, _ = send(self, gw, f"trace-unknown-{tag}", rcpts=(f"nosuch-{tag}@{base.DOMAIN}",))
        self.assertEqual(rcpt[0].code, 550, rcpt[0])
        [u] = self.wait_traced(db, "--to", f"nosuch-{tag}@{base.DOMAIN}")
        self.assertEqual((u["status"], u["stage"], u["decided_by"]), ("rejected", "rcpt", ""))
        self.assertTrue(u["reply"].startswith("550 "), u)
        self.assertIn("Recipient address rejected", u["reply"])

        # The human form names the same facts.
        text = self.trace(db, "--message-id", f"trace-gtube-{tag}@example.org").stdout
        self.assertIn("rejected by plugin spamscore", text)
        self.assertIn("symbol:     GTUBE +1000.00", text)
        self.assertIn("plugin:     spamscore eom reject", text)

        # The database is in WAL mode, so mailgatectl reads while the gateway writes.
        with open(db, "rb") as f:
            header = f.read(20)
        self.assertEqual(header[18:20], b"\x02\x02")  # read/write version 2 = WAL

    def test_gateway_flag_errors_name_the_flag(self):
        spool = util.make_tempdir("mailgate-spool-")
        self.addCleanup(util.remove_tree, spool)
        for flags, code, words in (
                (["--trace_db=/nonexistent/dir/trace.db"], 1,
                 "--trace_db: trace database '/nonexistent/dir/trace.db'"),
                (["--trace_db=x.db", "--trace_max_rows=5"], 2, "--trace_max_rows: must be from"),
                (["--trace_retention_hours=0"], 2, "--trace_retention_hours: must be from"),
                (["--trace_queue=1"], 2, "--trace_queue: must be from")):
            p = subprocess.run([base.require_binary(), "--listen=127.0.0.1:0",
                                f"--backend=127.0.0.1:{self.postfix.port}", "--dns_servers=none",
                                f"--spool_dir={spool}", f"--policy_db={spool}/policy.db", *flags],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, code, p.stdout + p.stderr)
            self.assertIn(words, p.stderr)

    def test_usage_errors_name_the_option(self):
        p = self.trace("/nonexistent/trace.db", "--since", "yesterday", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--since: 'yesterday' is not a time", p.stderr)
        p = self.trace("/nonexistent/trace.db", "--status", "lost", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--status: 'lost'", p.stderr)
        p = self.trace("/nonexistent/trace.db", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("trace database '/nonexistent/trace.db'", p.stderr)


if __name__ == "__main__":
    unittest.main()
