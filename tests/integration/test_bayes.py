"""The Bayes classifier from the command line and in the chain: `mailgatectl learn` reads message
files, directories, mboxes and maildirs into a SQLite token file or a real redis-server on
loopback; `mailgatectl classify` prints each message's probability and verdict; the built
bayes.so, run by `mailgatectl check` over a message with the chain from the policy database,
adds BAYES_SPAM / BAYES_HAM from what was learned; and two gateways in front of a private
Postfix, sharing one redis-server (--redis, the plugin's backend "store"), deliver held-back
messages whose X-Spam-Symbols (from spamscore after bayes) explain the Bayes verdict.

The corpus is the unit tests' fixture (tests/unit/bayes/fixtures: six spam, six ham, with
base64 HTML and quoted-printable parts); message 06 of each class is held back and classified.

Environment (ctest sets them): MAILGATECTL_BIN, MAILGATE_PLUGIN_DIR; otherwise looked for under
MAILGATE_SOURCE_DIR/build.
"""

import json
import os
import re
import shutil
import subprocess
import unittest

from mgtest import base, util
from mgtest.policyctl import PolicyCtl, builtin_plugin
from mgtest.redisserver import RedisServer
from mgtest.smtpclient import message_data

SOURCE_DIR = os.environ.get("MAILGATE_SOURCE_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..")
FIXTURES = os.path.join(SOURCE_DIR, "tests", "unit", "bayes", "fixtures")


def ctl_path():
    return os.path.abspath(os.environ.get("MAILGATECTL_BIN") or os.path.join(
        SOURCE_DIR, "build", "tools", "mailgatectl"))


def plugin_path():
    return os.path.join(os.path.abspath(os.environ.get("MAILGATE_PLUGIN_DIR") or os.path.join(
        SOURCE_DIR, "build", "plugins")), "bayes.so")


def fixture(kind, n):
    return os.path.join(FIXTURES, kind, f"{n:02d}.eml")


def read(path):
    with open(path) as f:
        return f.read()


class BayesCase(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.bin = ctl_path()
        if not os.access(cls.bin, os.X_OK):
            raise FileNotFoundError(f"mailgatectl not found: {cls.bin} (set MAILGATECTL_BIN)")

    def setUp(self):
        self.dir = util.make_tempdir("mailgate-bayes-")
        self.addCleanup(util.remove_tree, self.dir)
        self.policy = os.path.join(self.dir, "policy.db")
        self.tokens = os.path.join(self.dir, "bayes.db")
        self.ctl("init")
        # spam: three files in a directory and an mbox of two; ham: a maildir of five
        spam_dir = os.path.join(self.dir, "spam")
        os.makedirs(spam_dir)
        for n in (1, 2, 3):
            shutil.copy(fixture("spam", n), os.path.join(spam_dir, f"{n}.eml"))
        self.mbox = os.path.join(self.dir, "spam.mbox")
        with open(self.mbox, "w") as f:
            for n in (4, 5):
                body = read(fixture("spam", n))
                # a body line starting with "From " is escaped in an mbox; learn unescapes it
                f.write(f"From offers@example.biz Mon Jun  1 10:0{n}:00 2026\n{body}"
                        ">From the desk of the promoter\n\n")
        self.maildir = os.path.join(self.dir, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.maildir, sub))
        for n in (1, 2, 3, 4, 5):
            sub = "cur" if n % 2 else "new"
            shutil.copy(fixture("ham", n), os.path.join(self.maildir, sub, f"17000000{n}.x:2,S"))

    def ctl(self, *args, check=True):
        env = {k: v for k, v in os.environ.items() if k != "MAILGATE_DB"}
        p = subprocess.run([self.bin, "--db", self.policy] + list(args), capture_output=True,
                           text=True, timeout=120, env=env)
        self.assertGreaterEqual(p.returncode, 0, f"{args}: killed by signal {-p.returncode}")
        if check:
            self.assertEqual(p.returncode, 0, f"{args}: exit {p.returncode}\n{p.stderr}")
        return p

    def learn_fixture(self, *store):
        spam = self.ctl("learn", "--spam", *store, os.path.join(self.dir, "spam"), self.mbox)
        ham = self.ctl("learn", "--ham", *store, self.maildir)
        return spam, ham

    def classify(self, *store_and_files):
        p = self.ctl("--json", "classify", *store_and_files)
        return json.loads(p.stdout)


class LearnClassifyTest(BayesCase):

    def test_learn_then_classify_held_back_messages(self):
        spam, ham = self.learn_fixture("--bayes-db", self.tokens)
        self.assertIn("learned 5 message(s) as spam", spam.stdout)
        self.assertIn(f"sqlite:{self.tokens} now holds 5 spam and 0 ham", spam.stdout)
        self.assertIn("learned 5 message(s) as ham", ham.stdout)
        self.assertIn("now holds 5 spam and 5 ham", ham.stdout)

        p = self.ctl("classify", "--bayes-db", self.tokens, fixture("spam", 6), fixture("ham", 6))
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 2, p.stdout)
        m = re.fullmatch(re.escape(fixture("spam", 6)) + r": probability (\d\.\d{4}) spam",
                         lines[0])
        self.assertIsNotNone(m, lines[0])
        self.assertGreaterEqual(float(m.group(1)), 0.9)
        m = re.fullmatch(re.escape(fixture("ham", 6)) + r": probability (\d\.\d{4}) ham", lines[1])
        self.assertIsNotNone(m, lines[1])
        self.assertLessEqual(float(m.group(1)), 0.2)

        r = self.classify("--bayes-db", self.tokens, fixture("spam", 6))
        self.assertEqual((r["total_spam"], r["total_ham"]), (5, 5))
        self.assertEqual((r["spam_cutoff"], r["ham_cutoff"]), (0.9, 0.2))
        [result] = r["results"]
        self.assertEqual(result["verdict"], "spam")
        self.assertTrue(result["clues"])
        self.assertTrue(all(c["probability"] > 0.5 for c in result["clues"][:3]), result["clues"])

        # cut-offs from the command line
        r = self.classify("--bayes-db", self.tokens, "--spam-cutoff", "1.0", fixture("spam", 6))
        self.assertEqual(r["results"][0]["verdict"], "unsure")

    def test_learning_again_and_corrections(self):
        self.learn_fixture("--bayes-db", self.tokens)
        again = self.ctl("learn", "--spam", "--bayes-db", self.tokens, self.mbox)
        self.assertIn("learned 0 message(s) as spam (0 moved from the other class, 2 already known)",
                      again.stdout)
        # a ham message relearned as spam moves over: the totals say so
        moved = self.ctl("--json", "learn", "--spam", "--bayes-db", self.tokens,
                         fixture("ham", 1))
        r = json.loads(moved.stdout)
        self.assertEqual((r["learned"], r["relearned"], r["already_known"]), (0, 1, 0))
        self.assertEqual((r["total_spam"], r["total_ham"]), (6, 4))

    def test_mbox_from_lines_are_unescaped_before_learning(self):
        # The mbox's two messages end with an escaped ">From" line; learned from the mbox they
        # are the same messages as the files with that line appended, so classify sees them as
        # already learned (their digests match).
        self.ctl("learn", "--spam", "--bayes-db", self.tokens, self.mbox)
        plain = os.path.join(self.dir, "plain.eml")
        with open(plain, "w") as f:
            f.write(read(fixture("spam", 4)) + "From the desk of the promoter\n\n")
        p = self.ctl("--json", "learn", "--spam", "--bayes-db", self.tokens, plain)
        self.assertEqual(json.loads(p.stdout)["already_known"], 1)

    def test_errors(self):
        p = self.ctl("learn", "--bayes-db", self.tokens, self.mbox, check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("exactly one of --spam and --ham", p.stderr)
        p = self.ctl("learn", "--spam", "--ham", "--bayes-db", self.tokens, self.mbox, check=False)
        self.assertEqual(p.returncode, 2)
        p = self.ctl("learn", "--spam", "--bayes-db", self.tokens, "--redis", "127.0.0.1:1",
                     self.mbox, check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("not both", p.stderr)
        missing = os.path.join(self.dir, "no-such-corpus")
        p = self.ctl("learn", "--spam", "--bayes-db", self.tokens, missing, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(missing, p.stderr)
        # no store named and no bayes plugin in the policy database
        p = self.ctl("learn", "--spam", self.mbox, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--bayes-db", p.stderr)
        # classify does not create a token file
        p = self.ctl("classify", "--bayes-db", os.path.join(self.dir, "none.db"),
                     fixture("spam", 6), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "none.db")))
        p = self.ctl("classify", "--bayes-db", self.tokens, "--spam-cutoff", "2",
                     fixture("spam", 6), check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--spam-cutoff", p.stderr)
        p = self.ctl("learn", "--spam", "--redis", "127.0.0.1:notaport", self.mbox, check=False)
        self.assertEqual(p.returncode, 2)


class PluginChainTest(BayesCase):
    """The plugin row in the policy database names the token file: learn and classify use it
    without --bayes-db, and `mailgatectl check` runs bayes.so over a message."""

    def setUp(self):
        super().setUp()
        if not os.path.exists(plugin_path()):
            self.skipTest(f"{plugin_path()} not built (set MAILGATE_PLUGIN_DIR)")
        settings = {"db": self.tokens, "min_spam": 3, "min_ham": 3}
        self.ctl("policy", "plugin", "add", "--name", "bayes", "--path", plugin_path(),
                 "--settings", json.dumps(settings), "--fail-mode", "open")

    def check(self, message):
        p = self.ctl("--json", "check", "--client-ip", "192.0.2.10", "--helo", "client.example",
                     "--from", "sender@example.net", "--to", "alice@example.org", message,
                     check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_learn_from_the_plugin_settings_and_score_in_the_chain(self):
        # before learning: nothing to say (fewer than min_spam / min_ham)
        r = self.check(fixture("spam", 6))
        self.assertEqual(r["symbols"], [])
        self.learn_fixture()  # no --bayes-db: the plugin's "db"
        self.assertTrue(os.path.exists(self.tokens))
        r = self.classify(fixture("ham", 6))
        self.assertEqual(r["store"], f"sqlite:{self.tokens}")
        self.assertEqual(r["results"][0]["verdict"], "ham")

        r = self.check(fixture("spam", 6))
        [sym] = r["symbols"]
        self.assertEqual((sym["name"], sym["plugin"]), ("BAYES_SPAM", "bayes"))
        self.assertGreaterEqual(sym["score"], 1.5)
        self.assertRegex(sym["detail"], r"^p=(0\.9\d{3}|1\.0000) clues ")
        self.assertEqual(r["verdict"]["action"], "accept")  # bayes only scores

        r = self.check(fixture("ham", 6))
        [sym] = r["symbols"]
        self.assertEqual(sym["name"], "BAYES_HAM")
        self.assertLess(sym["score"], 0)

    def test_store_backend_needs_redis_on_the_command_line(self):
        self.ctl("policy", "plugin", "set", "bayes", "--settings",
                 json.dumps({"backend": "store"}))
        p = self.ctl("learn", "--spam", self.mbox, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--redis", p.stderr)


class RedisTest(BayesCase):
    """Counts in a real redis-server, as the plugin's backend "store" keeps them through the
    gateway's --redis: what one learner wrote, another process reads."""

    def setUp(self):
        super().setUp()
        if shutil.which("redis-server") is None:
            self.skipTest("redis-server not installed")
        self.redis = RedisServer(self.dir).start()
        self.addCleanup(self.redis.stop)

    def test_learn_and_classify_through_redis(self):
        spam, ham = self.learn_fixture("--redis", self.redis.address)
        self.assertIn(f"redis:{self.redis.address}/bayes now holds 5 spam and 0 ham", spam.stdout)
        self.assertIn("now holds 5 spam and 5 ham", ham.stdout)
        r = self.classify("--redis", self.redis.address, fixture("spam", 6), fixture("ham", 6))
        self.assertEqual((r["total_spam"], r["total_ham"]), (5, 5))
        self.assertEqual([x["verdict"] for x in r["results"]], ["spam", "ham"])
        # the same verdicts as from SQLite: the two stores count the same
        self.learn_fixture("--bayes-db", self.tokens)
        s = self.classify("--bayes-db", self.tokens, fixture("spam", 6), fixture("ham", 6))
        self.assertEqual([round(x["probability"], 9) for x in r["results"]],
                         [round(x["probability"], 9) for x in s["results"]])
        # another prefix is another set of counts
        r = self.classify("--redis", self.redis.address, "--key-prefix", "other",
                          fixture("spam", 6))
        self.assertEqual((r["total_spam"], r["total_ham"]), (0, 0))
        self.assertEqual(r["results"][0]["verdict"], "unsure")
        # relearning is recognised in Redis too
        again = self.ctl("learn", "--ham", "--redis", self.redis.address, self.maildir)
        self.assertIn("5 already known", again.stdout)

    def test_redis_down_is_an_error(self):
        address = self.redis.address
        self.redis.kill()
        p = self.ctl("learn", "--spam", "--redis", address, self.mbox, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"--redis {address}", p.stderr)


class GatewayTest(base.PostfixCase):
    """bayes (backend "store") and spamscore in two gateways sharing a redis-server that
    `mailgatectl learn --redis` filled: what one learner wrote, both gateways score by."""

    def setUp(self):
        if shutil.which("redis-server") is None:
            self.skipTest("redis-server not installed")
        self.dir = util.make_tempdir("mailgate-bayes-gw-")
        self.addCleanup(util.remove_tree, self.dir)
        self.redis = RedisServer(self.dir).start()
        self.addCleanup(self.redis.stop)

    def learn(self, label, *paths):
        env = {k: v for k, v in os.environ.items() if k != "MAILGATE_DB"}
        p = subprocess.run([ctl_path(), "learn", f"--{label}", "--redis", self.redis.address,
                            "--key-prefix", "gw", *paths], capture_output=True, text=True,
                           timeout=60, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)

    def send(self, gw, path, tag):
        """Sends the fixture message with a unique Message-ID; returns the end-of-data reply."""
        lines = read(path).split("\n")
        lines = [f"Message-ID: <{tag}@client.test>" if ln.startswith("Message-ID:") else ln
                 for ln in lines]
        c = self.connect(gw, timeout=30)
        self.assertEqual(c.greeting.code, 220, c.greeting)
        self.assertEqual(c.cmd("EHLO client.test").code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<sender@client.test>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        r = c.data(message_data("\r\n".join(lines).encode()))
        c.quit()
        return r

    def delivered_head(self, tag):
        def find():
            for m in self.postfix.messages(base.USER):
                if f"<{tag}@client.test>".encode() in m:
                    return m.decode("utf-8", "replace")
            return None
        util.wait_until(lambda: find() is not None, 20, what=f"delivery of {tag}")
        head = find().replace("\r\n", "\n").split("\n\n", 1)[0]
        return head.replace("\n ", " ").replace("\n\t", " ")

    def test_two_gateways_score_by_the_shared_counts(self):
        for n in (1, 2, 3, 4, 5):
            self.learn("spam", fixture("spam", n))
            self.learn("ham", fixture("ham", n))
        ctl = PolicyCtl(os.path.join(self.dir, "policy.db"))
        ctl.init()
        ctl("policy", "domain", "add", base.DOMAIN)
        for name, settings in (("bayes", {"backend": "store", "key_prefix": "gw",
                                          "min_spam": 3, "min_ham": 3}),
                               ("spamscore", {})):
            ctl("policy", "plugin", "add", "--name", name, "--path", builtin_plugin(name),
                "--settings", json.dumps(settings), "--fail-mode", "tempfail",
                "--timeout-ms", "10000")
        gateways = []
        for _ in range(2):
            gw = self.start_gateway(flags=[f"--policy_db={ctl.db}", "--policy_poll_ms=100",
                                           f"--redis={self.redis.address}"])
            gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 2 plugin instances\)")
            gateways.append(gw)
        tag = os.path.basename(self.dir)
        self.assertEqual(self.send(gateways[0], fixture("spam", 6), f"spam-{tag}").code, 250)
        self.assertEqual(self.send(gateways[1], fixture("ham", 6), f"ham-{tag}").code, 250)

        spam = self.delivered_head(f"spam-{tag}")
        m = re.search(r"^X-Spam-Symbols:.*BAYES_SPAM\(([\d.]+)\)\[p=([\d.]+) clues ", spam, re.M)
        self.assertIsNotNone(m, spam)
        self.assertGreaterEqual(float(m.group(1)), 1.5)
        self.assertGreaterEqual(float(m.group(2)), 0.9)
        ham = self.delivered_head(f"ham-{tag}")
        m = re.search(r"^X-Spam-Symbols:.*BAYES_HAM\((-[\d.]+)\)\[p=([\d.]+) clues ", ham, re.M)
        self.assertIsNotNone(m, ham)
        self.assertLessEqual(float(m.group(2)), 0.2)
        self.assertNotIn("BAYES_SPAM", ham)


if __name__ == "__main__":
    unittest.main()
