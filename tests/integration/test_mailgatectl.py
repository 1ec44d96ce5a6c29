"""mailgatectl, the policy database's admin tool: every command's happy path, every error path
with its exit code (0 ok, 1 refused/failed, 2 bad command line) and message, and that what it
writes is what the gateway's loader accepts. Runs the real binary on temp databases; the
sqlite3 module plays the admin who edits the file by hand.

MAILGATECTL_BIN names the binary (ctest sets it); otherwise build/tools/mailgatectl under
MAILGATE_SOURCE_DIR.
"""

import glob
import json
import os
import re
import sqlite3
import subprocess
import unittest

from mgtest import util


def ctl_path():
    path = os.environ.get("MAILGATECTL_BIN")
    if not path:
        src = os.environ.get("MAILGATE_SOURCE_DIR") or os.path.join(
            os.path.dirname(__file__), "..", "..")
        path = os.path.join(src, "build", "tools", "mailgatectl")
    return os.path.abspath(path)


def latest_schema_version():
    """The newest schema version: the number of db/migrations/NNNN_*.sql files in the source."""
    src = os.environ.get("MAILGATE_SOURCE_DIR") or os.path.join(
        os.path.dirname(__file__), "..", "..")
    names = [os.path.basename(f) for f in glob.glob(os.path.join(src, "db", "migrations", "*.sql"))]
    return len([n for n in names if re.fullmatch(r"[0-9]{4}_[a-z0-9_]+\.sql", n)])


LATEST = latest_schema_version()


class CtlCase(unittest.TestCase):
    """Each test gets a fresh temp dir with an initialised database at self.db."""

    init_db = True

    @classmethod
    def setUpClass(cls):
        cls.bin = ctl_path()
        if not os.access(cls.bin, os.X_OK):
            raise FileNotFoundError(f"mailgatectl not found or not executable: {cls.bin} "
                                    f"(set MAILGATECTL_BIN)")

    def setUp(self):
        self.dir = util.make_tempdir("mailgate-ctl-")
        self.addCleanup(util.remove_tree, self.dir)
        self.db = os.path.join(self.dir, "policy.db")
        if self.init_db:
            self.ok("init")

    def run_ctl(self, *args, db=True, env=None):
        argv = [self.bin] + (["--db", self.db] if db else []) + list(args)
        full_env = {k: v for k, v in os.environ.items() if k != "MAILGATE_DB"}
        full_env.update(env or {})
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=full_env)
        self.assertNotIn("Segmentation", p.stderr)
        self.assertGreaterEqual(p.returncode, 0, f"{args}: killed by signal {-p.returncode}")
        return p

    def ok(self, *args, **kw):
        p = self.run_ctl(*args, **kw)
        self.assertEqual(p.returncode, 0, f"{args}: exit {p.returncode}\n{p.stderr}")
        return p.stdout

    def fails(self, code, *args, contains=(), **kw):
        """Runs a command that must exit with `code`; checks stderr mentions each string."""
        p = self.run_ctl(*args, **kw)
        self.assertEqual(p.returncode, code,
                         f"{args}: expected exit {code}, got {p.returncode}\n"
                         f"stdout: {p.stdout}\nstderr: {p.stderr}")
        for text in ([contains] if isinstance(contains, str) else contains):
            self.assertIn(text, p.stderr, f"{args}: stderr lacks {text!r}")
        self.assertEqual(p.stdout, "", f"{args}: printed on failure: {p.stdout!r}")
        return p.stderr

    def usage(self, *args, contains=()):
        err = self.fails(2, *args, contains=contains)
        self.assertIn("usage: mailgatectl", err)
        return err

    def refused(self, *args, contains=()):
        err = self.fails(1, *args, contains=contains)
        self.assertTrue(err.startswith("mailgatectl: error: "), err)
        return err

    def listing(self, *args):
        return json.loads(self.ok("--json", *args))

    def rows(self, sql, params=()):
        with sqlite3.connect(self.db) as c:
            return c.execute(sql, params).fetchall()

    def hand_edit(self, sql):
        """An edit made with the sqlite3 shell by someone who bypassed the CHECKs."""
        c = sqlite3.connect(self.db)
        try:
            c.execute("PRAGMA ignore_check_constraints = ON")
            c.executescript(sql)
            c.commit()
        finally:
            c.close()


class InitTest(CtlCase):
    init_db = False

    def test_creates_with_the_current_schema_in_wal_mode(self):
        out = self.ok("init")
        self.assertEqual(out, f"created policy database '{self.db}' (schema version {LATEST})\n")
        self.assertEqual(self.rows("PRAGMA user_version"), [(LATEST,)])
        self.assertEqual(self.rows("PRAGMA journal_mode"), [("wal",)])
        tables = {r[0] for r in self.rows("SELECT name FROM sqlite_schema WHERE type='table'")}
        self.assertLessEqual({"plugins", "local_domains", "relay_networks", "access",
                              "plugin_settings", "dkim_keys"}, tables)

    def test_again_is_harmless_and_keeps_data(self):
        self.ok("init")
        self.ok("policy", "domain", "add", "example.com")
        self.assertEqual(self.ok("init"),
                         f"policy database '{self.db}' is already at schema version {LATEST}\n")
        self.assertEqual(self.rows("SELECT domain FROM local_domains"), [("example.com",)])

    def test_json(self):
        out = json.loads(self.ok("--json", "init"))
        self.assertEqual(out["ok"], True)
        self.assertEqual(out["from_version"], 0)
        self.assertEqual(out["schema_version"], LATEST)

    def test_empty_file_is_initialised(self):
        open(self.db, "w").close()
        self.ok("init")
        self.assertEqual(self.rows("PRAGMA user_version"), [(LATEST,)])

    def test_db_from_the_environment(self):
        p = self.run_ctl("init", db=False, env={"MAILGATE_DB": self.db})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.exists(self.db))
        # --db wins over the environment.
        other = os.path.join(self.dir, "other.db")
        p = self.run_ctl("--db", other, "init", db=False, env={"MAILGATE_DB": self.db})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.exists(other))

    def test_refuses_a_foreign_database(self):
        with sqlite3.connect(self.db) as c:
            c.execute("CREATE TABLE customers (id INTEGER)")
        self.refused("init", contains=[
            f"refusing to initialise '{self.db}': it is a non-empty SQLite database that is "
            f"not a mailgate policy database"])
        self.assertEqual(self.rows("SELECT name FROM sqlite_schema"), [("customers",)])

    def test_refuses_a_file_that_is_not_sqlite(self):
        with open(self.db, "w") as f:
            f.write("hello, this is not a database\n" * 20)
        self.refused("init", contains=f"cannot open policy database '{self.db}': file is not a "
                                      f"database")

    def test_refuses_a_newer_schema(self):
        self.ok("init")
        with sqlite3.connect(self.db) as c:
            c.execute("PRAGMA user_version = 99")
        self.refused("init", contains="policy database has schema version 99, newer than this "
                                      f"mailgate knows ({LATEST})")
        self.assertEqual(self.rows("PRAGMA user_version"), [(99,)])

    def test_refuses_a_missing_directory(self):
        self.db = os.path.join(self.dir, "missing", "policy.db")
        self.refused("init", contains=f"directory '{os.path.dirname(self.db)}' does not exist")

    def test_refuses_a_directory(self):
        self.db = self.dir
        self.refused("init", contains="is not a regular file")


class CommandLineTest(CtlCase):
    """Exit 2 and the usage line for everything wrong with the command line itself."""

    def test_no_arguments_prints_help_and_fails(self):
        p = self.run_ctl(db=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("policy domain add DOMAIN", p.stderr)

    def test_help(self):
        for args in (["--help"], ["help"], ["-h"]):
            out = self.ok(*args, db=False)
            self.assertIn("policy access add --stage STAGE", out)
            self.assertIn("exit status: 0 success, 1 refused or failed, 2 bad command line", out)
        out = self.ok("policy", "plugin", "add", "--help")
        self.assertIn("--fail-mode MODE", out)
        self.assertIn("(required)", out)
        self.assertIn("one of access, domain, network, plugin, ratelimit, route, settings",
                      self.ok("policy", "--help"))

    def test_unknown_command(self):
        self.usage("frobnicate", contains="unknown command 'frobnicate'")

    def test_missing_subcommand(self):
        self.usage("policy", contains="policy: missing subcommand (one of: access, domain, "
                                      "network, plugin, ratelimit, route, settings)")
        self.usage("policy", "domain", contains="policy domain: missing subcommand (one of: add, "
                                                "list, remove)")

    def test_unknown_subcommand(self):
        self.usage("policy", "domain", "delete",
                   contains="policy domain: unknown subcommand 'delete' (one of: add, list, "
                            "remove)")

    def test_unknown_option(self):
        self.usage("policy", "domain", "list", "--frob", contains="unknown option '--frob'")

    def test_option_of_another_command(self):
        self.usage("policy", "domain", "list", "--comment", "x",
                   contains="policy domain list: unknown option '--comment'")

    def test_option_without_value(self):
        self.usage("policy", "domain", "add", "a.example", "--comment",
                   contains="option --comment needs a value")

    def test_flag_with_value(self):
        self.usage("--json=yes", "policy", "domain", "list", contains="option --json takes no "
                                                                      "value")

    def test_missing_argument(self):
        self.usage("policy", "domain", "add", contains="missing argument DOMAIN")
        self.usage("policy", "plugin", "order", "x", contains="missing argument POSITION")
        self.usage("policy", "settings", "set", "spf", "*", contains="missing argument JSON")

    def test_extra_argument(self):
        self.usage("policy", "domain", "add", "a.example", "b.example",
                   contains="unexpected argument 'b.example'")
        self.usage("policy", "domain", "list", "x", contains="unexpected argument 'x'")

    def test_missing_required_option(self):
        self.usage("policy", "access", "add", "--stage", "client", "--action", "deny",
                   contains="missing required option --pattern PATTERN")
        self.usage("policy", "plugin", "add", "--name", "x",
                   contains="missing required option --path PATH")

    def test_not_an_integer(self):
        self.usage("policy", "access", "remove", "seven", contains="ID: 'seven' is not an integer")
        self.usage("policy", "access", "add", "--stage", "sender", "--pattern", "a@b.example",
                   "--action", "deny", "--code", "5x0", contains="--code: '5x0' is not an integer")
        self.usage("policy", "plugin", "add", "--name", "x", "--path", "x.so", "--timeout-ms",
                   "1s", contains="--timeout-ms: '1s' is not an integer")
        self.usage("policy", "plugin", "order", "x", "first",
                   contains="POSITION: 'first' is not an integer")

    def test_plugin_set_needs_something_to_set(self):
        self.usage("policy", "plugin", "set", "x", contains="nothing to set")

    def test_empty_db_path(self):
        p = self.run_ctl("--db", "", "policy", "domain", "list", db=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--db: the path is empty", p.stderr)

    def test_options_anywhere_and_equals_form(self):
        self.ok("policy", "--comment=main", "domain", "add", "a.example")
        self.assertEqual(self.listing("policy", "domain", "list"),
                         [{"domain": "a.example", "comment": "main"}])


class MissingDatabaseTest(CtlCase):
    init_db = False

    def test_every_policy_command_needs_an_existing_database(self):
        for args in (["policy", "domain", "list"], ["policy", "domain", "add", "a.example"],
                     ["policy", "network", "list"], ["policy", "access", "list"],
                     ["policy", "plugin", "list"], ["policy", "settings", "list"]):
            self.refused(*args, contains=f"policy database '{self.db}' does not exist (create "
                                         f"it with: mailgatectl --db {self.db} init)")
        self.assertFalse(os.path.exists(self.db))

    def test_not_a_database(self):
        with open(self.db, "w") as f:
            f.write("x" * 4096)
        self.refused("policy", "domain", "list", contains="file is not a database")

    def test_newer_schema_is_refused(self):
        self.ok("init")
        with sqlite3.connect(self.db) as c:
            c.execute(f"PRAGMA user_version = {LATEST + 1}")
        self.refused("policy", "domain", "add", "a.example",
                     contains=f"policy database has schema version {LATEST + 1}, newer than this "
                              f"mailgate knows ({LATEST}); upgrade mailgate")


class DomainTest(CtlCase):
    def test_add_list_remove(self):
        self.assertEqual(self.ok("policy", "domain", "list"), "no local domains\n")
        self.assertEqual(self.ok("policy", "domain", "add", "Example.COM", "--comment", "main"),
                         "added local domain 'example.com'\n")
        self.ok("policy", "domain", "add", "b.example")
        self.assertEqual(self.ok("policy", "domain", "list"),
                         "DOMAIN       COMMENT\n"
                         "b.example    -\n"
                         "example.com  main\n")
        self.assertEqual(self.listing("policy", "domain", "list"),
                         [{"domain": "b.example", "comment": None},
                          {"domain": "example.com", "comment": "main"}])
        self.assertEqual(self.ok("policy", "domain", "remove", "EXAMPLE.com"),
                         "removed local domain 'example.com'\n")
        self.assertEqual(self.rows("SELECT domain FROM local_domains"), [("b.example",)])

    def test_json_result_of_a_change(self):
        out = json.loads(self.ok("--json", "policy", "domain", "add", "a.example"))
        self.assertEqual(out, {"ok": True, "message": "added local domain 'a.example'"})

    def test_errors(self):
        self.refused("policy", "domain", "add", "bad_domain.example",
                     contains="DOMAIN: 'bad_domain.example' is not a valid domain name: label "
                              "'bad_domain' has a character other than a-z, 0-9 and '-'")
        self.refused("policy", "domain", "add", "example.com.",
                     contains="DOMAIN: 'example.com.' is not a valid domain name: ends with a dot")
        self.refused("policy", "domain", "add", "192.0.2.1", contains="looks like an IP address")
        self.ok("policy", "domain", "add", "a.example")
        self.refused("policy", "domain", "add", "A.EXAMPLE",
                     contains="local domain 'a.example' already exists")
        self.refused("policy", "domain", "remove", "b.example",
                     contains="DOMAIN: no local domain 'b.example'")
        self.assertEqual(self.rows("SELECT domain FROM local_domains"), [("a.example",)])


class NetworkTest(CtlCase):
    def test_add_list_remove(self):
        self.assertEqual(self.ok("policy", "network", "list"), "no relay networks\n")
        self.assertEqual(self.ok("policy", "network", "add", "10.0.0.0/8"),
                         "added relay network 10.0.0.0/8\n")
        self.ok("policy", "network", "add", "2001:DB8::/32", "--comment", "office v6")
        self.ok("policy", "network", "add", "192.0.2.7")
        self.assertEqual(self.listing("policy", "network", "list"), [
            {"cidr": "10.0.0.0/8", "comment": None},
            {"cidr": "192.0.2.7/32", "comment": None},
            {"cidr": "2001:db8::/32", "comment": "office v6"}])
        # Any spelling of the network removes it.
        self.assertEqual(self.ok("policy", "network", "remove", "192.0.2.7"),
                         "removed relay network 192.0.2.7/32\n")
        self.ok("policy", "network", "remove", "2001:0db8:0::/32")
        self.assertEqual(self.rows("SELECT cidr FROM relay_networks"), [("10.0.0.0/8",)])

    def test_errors(self):
        self.refused("policy", "network", "add", "10.0.0.0/33",
                     contains="CIDR: bad CIDR '10.0.0.0/33': prefix length must be 0..32")
        self.refused("policy", "network", "add", "10.0.0.1/8",
                     contains="CIDR: bad CIDR '10.0.0.1/8': host bits set; did you mean "
                              "'10.0.0.0/8'?")
        self.refused("policy", "network", "add", "localhost",
                     contains="CIDR: bad CIDR 'localhost': not an IPv4 or IPv6 address")
        self.ok("policy", "network", "add", "10.0.0.1")
        self.refused("policy", "network", "add", "10.0.0.1/32",
                     contains="relay network 10.0.0.1/32 already exists")
        self.refused("policy", "network", "remove", "10.0.0.2",
                     contains="CIDR: no relay network 10.0.0.2/32")
        self.refused("policy", "network", "remove", "garbage",
                     contains="CIDR: bad CIDR 'garbage'")


class AccessTest(CtlCase):
    def add(self, *args):
        return json.loads(self.ok("--json", "policy", "access", "add", *args))["id"]

    def test_add_list_remove(self):
        self.assertEqual(self.ok("policy", "access", "list"), "no access rules\n")
        a = self.add("--stage", "client", "--pattern", "198.51.100.0/24", "--action", "deny",
                     "--code", "550", "--enhanced", "5.7.1", "--text", "No thanks",
                     "--comment", "spam source")
        b = self.add("--stage", "helo", "--pattern", ".Example.NET", "--action", "tempfail")
        c = self.add("--stage", "sender", "--pattern", "Boss@Example.com", "--action", "allow")
        d = self.add("--stage", "recipient_domain", "--pattern", "example.org", "--action",
                     "deny")
        self.assertEqual(len({a, b, c, d}), 4)
        rules = self.listing("policy", "access", "list")
        self.assertEqual(rules[0], {"id": a, "stage": "client", "pattern": "198.51.100.0/24",
                                    "action": "deny", "code": 550, "enhanced": "5.7.1",
                                    "text": "No thanks", "comment": "spam source"})
        self.assertEqual([r["pattern"] for r in rules],
                         ["198.51.100.0/24", ".example.net", "boss@example.com", "example.org"])
        self.assertEqual([r["id"] for r in self.listing("policy", "access", "list", "--stage",
                                                        "helo")], [b])
        table = self.ok("policy", "access", "list")
        self.assertTrue(table.startswith("ID  STAGE             PATTERN"), table)
        self.assertIn("No thanks", table)
        self.assertEqual(self.ok("policy", "access", "remove", str(b)),
                         f"removed access rule {b}\n")
        self.assertEqual(len(self.listing("policy", "access", "list")), 3)

    def test_host_patterns_are_stored_canonical(self):
        self.add("--stage", "client", "--pattern", "2001:DB8::1", "--action", "deny")
        self.assertEqual(self.rows("SELECT pattern FROM access"), [("2001:db8::1/128",)])

    def test_errors(self):
        base = ["policy", "access", "add"]
        self.refused(*base, "--stage", "rcpt", "--pattern", "x@y.example", "--action", "deny",
                     contains="--stage: must be client, helo, sender, sender_domain, recipient "
                              "or recipient_domain (got 'rcpt')")
        self.refused(*base, "--stage", "sender", "--pattern", "x@y.example", "--action",
                     "reject", contains="--action: must be allow, deny or tempfail (got "
                                        "'reject')")
        self.refused(*base, "--stage", "client", "--pattern", "10.0.0.0/33", "--action", "deny",
                     contains="--pattern: bad CIDR '10.0.0.0/33': prefix length must be 0..32")
        self.refused(*base, "--stage", "sender", "--pattern", "nobody", "--action", "deny",
                     contains="--pattern: 'nobody' is not a valid address: no '@'")
        self.refused(*base, "--stage", "helo", "--pattern", "two words", "--action", "deny",
                     contains="--pattern: 'two words' is not a valid HELO name")
        self.refused(*base, "--stage", "sender_domain", "--pattern", "..x.example", "--action",
                     "deny", contains="--pattern: '..x.example' is not a valid domain or "
                                      ".suffix: has an empty label")
        self.refused(*base, "--stage", "sender", "--pattern", "a@b.example", "--action", "deny",
                     "--code", "451", contains="--code: must be 5xx for deny (got 451)")
        self.refused(*base, "--stage", "sender", "--pattern", "a@b.example", "--action",
                     "tempfail", "--enhanced", "5.7.1",
                     contains="--enhanced: must start with 4. for tempfail (got '5.7.1')")
        self.refused(*base, "--stage", "sender", "--pattern", "a@b.example", "--action", "deny",
                     "--enhanced", "5.7", contains="--enhanced: must look like X.Y.Z")
        self.refused(*base, "--stage", "sender", "--pattern", "a@b.example", "--action", "deny",
                     "--text", "", contains="--text: must not be empty")
        self.refused(*base, "--stage", "sender", "--pattern", "a@b.example", "--action", "deny",
                     "--text", "x" * 401, contains="--text: must be at most 400 characters")
        self.refused(*base, "--stage", "sender", "--pattern", "a@b.example", "--action", "allow",
                     "--code", "250", contains="--code, --enhanced and --text are not allowed "
                                               "with --action allow")
        first = self.add("--stage", "client", "--pattern", "10.0.0.1", "--action", "deny")
        self.refused(*base, "--stage", "client", "--pattern", "10.0.0.1/32", "--action", "allow",
                     contains=f"--pattern: stage client already has a rule for '10.0.0.1/32' "
                              f"(id {first}); remove it first")
        self.refused("policy", "access", "remove", "999", contains="ID: no access rule with id "
                                                                   "999")
        self.refused("policy", "access", "list", "--stage", "bogus",
                     contains="--stage: must be client")
        self.assertEqual(len(self.rows("SELECT * FROM access")), 1)


class PluginTest(CtlCase):
    def names(self):
        return [(p["position"], p["name"]) for p in self.listing("policy", "plugin", "list")]

    def test_add_list_order_enable_disable_set_remove(self):
        self.assertEqual(self.ok("policy", "plugin", "list"), "no plugins\n")
        self.assertEqual(self.ok("policy", "plugin", "add", "--name", "spf", "--path", "spf.so"),
                         "added plugin 'spf' at position 1\n")
        self.ok("policy", "plugin", "add", "--name", "dkim", "--path", "/usr/lib/dkim.so",
                "--settings", '{"sign": true}', "--fail-mode", "open", "--timeout-ms", "250",
                "--profile", "inbound")
        self.assertEqual(self.ok("policy", "plugin", "add", "--name", "access", "--path",
                                 "access.so", "--position", "1", "--disabled"),
                         "added plugin 'access' at position 1 (disabled)\n")
        self.assertEqual(self.names(), [(1, "access"), (2, "spf"), (3, "dkim")])
        dkim = self.listing("policy", "plugin", "list")[2]
        self.assertEqual(dkim, {"position": 3, "name": "dkim", "enabled": True,
                                "profile": "inbound", "fail_mode": "open", "timeout_ms": 250,
                                "path": "/usr/lib/dkim.so", "settings": '{"sign": true}'})
        table = self.ok("policy", "plugin", "list")
        self.assertEqual(table.splitlines()[0].split(),
                         ["POSITION", "NAME", "ENABLED", "PROFILE", "FAIL_MODE", "TIMEOUT_MS",
                          "PATH", "SETTINGS"])
        self.assertEqual(table.splitlines()[1].split()[:3], ["1", "access", "no"])

        self.assertEqual(self.ok("policy", "plugin", "order", "dkim", "1"),
                         "moved plugin 'dkim' to position 1\n")
        self.assertEqual(self.names(), [(1, "dkim"), (2, "access"), (3, "spf")])
        self.ok("policy", "plugin", "order", "dkim", "3")
        self.assertEqual(self.names(), [(1, "access"), (2, "spf"), (3, "dkim")])

        self.assertEqual(self.ok("policy", "plugin", "enable", "access"),
                         "enabled plugin 'access'\n")
        self.ok("policy", "plugin", "disable", "spf")
        self.assertEqual(self.rows("SELECT name, enabled FROM plugins ORDER BY position"),
                         [("access", 1), ("spf", 0), ("dkim", 1)])

        self.assertEqual(self.ok("policy", "plugin", "set", "spf", "--settings", '{"x": 1}',
                                 "--timeout-ms", "100", "--fail-mode", "open", "--profile",
                                 "submission", "--path", "/opt/spf.so"),
                         "updated plugin 'spf': path, profile, settings, fail_mode, "
                         "timeout_ms\n")
        self.assertEqual(self.rows("SELECT path, profile, settings, fail_mode, timeout_ms FROM "
                                   "plugins WHERE name = 'spf'"),
                         [("/opt/spf.so", "submission", '{"x": 1}', "open", 100)])

        self.ok("policy", "settings", "set", "spf", "*", '{"a": 1}')
        self.ok("policy", "settings", "set", "spf", "example.com", '{"a": 2}')
        self.assertEqual(self.ok("policy", "plugin", "remove", "spf"),
                         "removed plugin 'spf' and its 2 plugin_settings rows\n")
        self.assertEqual(self.names(), [(1, "access"), (2, "dkim")])
        self.assertEqual(self.rows("SELECT * FROM plugin_settings"), [])

    def test_errors(self):
        add = ["policy", "plugin", "add"]
        self.refused(*add, "--name", "Bad Name", "--path", "x.so",
                     contains="--name: 'Bad Name' is not a valid plugin name: use 1-64 "
                              "characters of a-z, 0-9, '_', '-'")
        self.refused(*add, "--name", "x", "--path", "x",
                     contains="--path: 'x' does not name a shared object (*.so)")
        self.refused(*add, "--name", "x", "--path", "",
                     contains="--path: must not be empty")
        self.refused(*add, "--name", "x", "--path", "x.so", "--profile", "in bound",
                     contains="--profile: 'in bound' is not a valid profile")
        self.refused(*add, "--name", "x", "--path", "x.so", "--settings", "{broken",
                     contains="--settings: is not valid JSON: parse error at line 1, column 2")
        self.refused(*add, "--name", "x", "--path", "x.so", "--settings", "[1, 2]",
                     contains="--settings: must be a JSON object")
        self.refused(*add, "--name", "x", "--path", "x.so", "--settings", '{"a": 1, "a": 2}',
                     contains="--settings: has a duplicate key 'a'")
        self.refused(*add, "--name", "x", "--path", "x.so", "--fail-mode", "closed",
                     contains="--fail-mode: must be open or tempfail (got 'closed')")
        self.refused(*add, "--name", "x", "--path", "x.so", "--timeout-ms", "0",
                     contains="--timeout-ms: must be 1..600000 milliseconds (got 0)")
        self.refused(*add, "--name", "x", "--path", "x.so", "--position", "2",
                     contains="--position: must be 1..1 (the chain has 0 entries)")
        self.assertEqual(self.rows("SELECT count(*) FROM plugins"), [(0,)])

        self.ok(*add, "--name", "x", "--path", "x.so")
        self.refused(*add, "--name", "x", "--path", "y.so",
                     contains="--name: plugin 'x' already exists")
        for verb in ("remove", "enable", "disable"):
            self.refused("policy", "plugin", verb, "nope", contains="NAME: no plugin 'nope'")
        self.refused("policy", "plugin", "order", "nope", "1", contains="NAME: no plugin 'nope'")
        self.refused("policy", "plugin", "order", "x", "2",
                     contains="POSITION: must be 1..1 (the chain has 1 entries)")
        self.refused("policy", "plugin", "order", "x", "0", contains="POSITION: must be 1..1")
        self.refused("policy", "plugin", "set", "nope", "--timeout-ms", "5",
                     contains="NAME: no plugin 'nope'")
        self.refused("policy", "plugin", "set", "x", "--settings", "nope",
                     contains="--settings: is not valid JSON")
        self.assertEqual(self.rows("SELECT name, path, settings FROM plugins"),
                         [("x", "x.so", "{}")])


class SettingsTest(CtlCase):
    def setUp(self):
        super().setUp()
        self.ok("policy", "plugin", "add", "--name", "spf", "--path", "spf.so")
        self.ok("policy", "plugin", "add", "--name", "dkim", "--path", "dkim.so")

    def test_set_list_remove(self):
        self.assertEqual(self.ok("policy", "settings", "list"), "no plugin settings\n")
        self.assertEqual(self.ok("policy", "settings", "set", "spf", "*", '{"mode": "soft"}'),
                         "set settings of plugin 'spf' for domain '*'\n")
        self.ok("policy", "settings", "set", "spf", "Example.com", '{"mode": "hard"}')
        self.ok("policy", "settings", "set", "dkim", "example.net", '{"selector": "s1"}')
        # Setting again replaces.
        self.ok("policy", "settings", "set", "spf", "example.com", '{"mode": "strict"}')
        self.assertEqual(self.listing("policy", "settings", "list"), [
            {"plugin": "dkim", "domain": "example.net", "settings": '{"selector": "s1"}'},
            {"plugin": "spf", "domain": "*", "settings": '{"mode": "soft"}'},
            {"plugin": "spf", "domain": "example.com", "settings": '{"mode": "strict"}'}])
        self.assertEqual(len(self.listing("policy", "settings", "list", "spf")), 2)
        self.assertEqual(self.ok("policy", "settings", "remove", "spf", "EXAMPLE.com"),
                         "removed settings of plugin 'spf' for domain 'example.com'\n")
        self.assertEqual(len(self.listing("policy", "settings", "list")), 2)

    def test_errors(self):
        self.refused("policy", "settings", "set", "nope", "*", "{}",
                     contains="PLUGIN: no plugin 'nope' in the chain (add it first: mailgatectl "
                              "policy plugin add)")
        self.refused("policy", "settings", "set", "SPF", "*", "{}",
                     contains="PLUGIN: 'SPF' is not a valid plugin name")
        self.refused("policy", "settings", "set", "spf", "not a domain", "{}",
                     contains="DOMAIN: 'not a domain' is not a valid domain name")
        self.refused("policy", "settings", "set", "spf", "*", "{",
                     contains="JSON: is not valid JSON")
        self.refused("policy", "settings", "set", "spf", "*", "true",
                     contains="JSON: must be a JSON object")
        self.refused("policy", "settings", "remove", "spf", "example.com",
                     contains="no settings for plugin 'spf' and domain 'example.com'")
        self.assertEqual(self.rows("SELECT count(*) FROM plugin_settings"), [(0,)])


class HandEditTest(CtlCase):
    """The database as an admin may have left it with the sqlite3 shell."""

    def test_a_change_that_would_break_the_policy_is_rolled_back(self):
        # A trigger sneaks a bad row in with every new domain: the change passes the argument
        # checks, but the would-be database does not load, so nothing is written.
        with sqlite3.connect(self.db) as c:
            c.execute("CREATE TRIGGER sneaky AFTER INSERT ON local_domains BEGIN "
                      "INSERT INTO relay_networks (cidr) VALUES ('10.0.0.0/33'); END")
        err = self.refused("policy", "domain", "add", "a.example")
        self.assertEqual(err,
                         "mailgatectl: error: the change was not made; it would make the policy "
                         "invalid:\n  relay_networks row '10.0.0.0/33': bad CIDR '10.0.0.0/33': "
                         "prefix length must be 0..32\n")
        self.assertEqual(self.rows("SELECT * FROM local_domains"), [])
        self.assertEqual(self.rows("SELECT * FROM relay_networks"), [])

    def test_earlier_problems_do_not_block_other_changes_but_are_reported(self):
        self.hand_edit("INSERT INTO access (id, stage, pattern, action) "
                       "VALUES (7, 'client', '10.0.0.0/33', 'deny')")
        p = self.run_ctl("policy", "domain", "add", "a.example")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "added local domain 'a.example'\n")
        self.assertIn("warning: the database still has problems from earlier edits", p.stderr)
        self.assertIn("access row 7: bad CIDR '10.0.0.0/33': prefix length must be 0..32",
                      p.stderr)
        # And the bad row can be removed, which clears the warning.
        p = self.run_ctl("policy", "access", "remove", "7")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")

    def test_bad_rows_can_be_removed_by_their_stored_text(self):
        self.hand_edit("INSERT INTO relay_networks (cidr) VALUES ('10.0.0.1/8');"
                       "INSERT INTO local_domains (domain) VALUES ('bad_one.example');"
                       "INSERT INTO plugins (position, name, path, fail_mode) "
                       "VALUES (1, 'x', 'x.so', 'closed')")
        self.ok("policy", "network", "remove", "10.0.0.1/8")
        self.ok("policy", "domain", "remove", "bad_one.example")
        p = self.run_ctl("policy", "plugin", "remove", "x")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")

    def test_listing_shows_what_is_there(self):
        self.hand_edit("INSERT INTO local_domains (domain, comment) VALUES ('Mixed.Example', "
                       "'typed by hand')")
        self.assertEqual(self.listing("policy", "domain", "list"),
                         [{"domain": "Mixed.Example", "comment": "typed by hand"}])


if __name__ == "__main__":
    unittest.main()
