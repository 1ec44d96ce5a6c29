"""mailgatectl for tests that set up or change a gateway's policy database.

    ctl = PolicyCtl(path)            # $MAILGATECTL_BIN (ctest sets it), else build/tools/mailgatectl
    ctl.init()                       # mailgatectl --db PATH init
    ctl("policy", "domain", "add", "example.test")    # stdout; raises CtlError on exit != 0
    ctl.run(...)                     # the CompletedProcess, whatever the exit code
    ctl.hand_edit("INSERT ...")      # what an admin does with the sqlite3 shell (CHECKs bypassed)
    ctl.hand_edit_script("BEGIN; ...; COMMIT;")   # several statements, one transaction
    wait_policy_applied(gw, mark)    # the gateway rebuilt its chains after log line `mark`
    builtin_plugin("access")         # $MAILGATE_PLUGIN_DIR/access.so, or a clear error
"""

import os
import sqlite3
import subprocess

PLUGIN_DIR_ENV = "MAILGATE_PLUGIN_DIR"


def ctl_path():
    path = os.environ.get("MAILGATECTL_BIN")
    if not path:
        src = os.environ.get("MAILGATE_SOURCE_DIR") or os.path.join(
            os.path.dirname(__file__), "..", "..", "..")
        path = os.path.join(src, "build", "tools", "mailgatectl")
    return os.path.abspath(path)


def builtin_plugin(name):
    """The absolute path of a built-in plugin in the build tree ($MAILGATE_PLUGIN_DIR)."""
    directory = os.environ.get(PLUGIN_DIR_ENV)
    if not directory:
        raise FileNotFoundError(f"{PLUGIN_DIR_ENV} is not set (ctest sets it)")
    path = os.path.join(directory, f"{name}.so")
    if not os.path.exists(path):
        raise FileNotFoundError(f"built-in plugin not built: {path}")
    return path


def test_plugin(name):
    """The absolute path of the test plugin tp_NAME.so ($MAILGATE_TEST_PLUGIN_DIR)."""
    directory = os.environ.get("MAILGATE_TEST_PLUGIN_DIR")
    if not directory:
        raise FileNotFoundError("MAILGATE_TEST_PLUGIN_DIR is not set (ctest sets it)")
    path = os.path.join(directory, f"tp_{name}.so")
    if not os.path.exists(path):
        raise FileNotFoundError(f"test plugin not built: {path}")
    return path


class CtlError(AssertionError):
    pass


class PolicyCtl:
    def __init__(self, db, binary=None):
        self.db = db
        self.bin = binary or ctl_path()
        if not os.access(self.bin, os.X_OK):
            raise FileNotFoundError(f"mailgatectl not found or not executable: {self.bin} "
                                    f"(set MAILGATECTL_BIN)")

    def run(self, *args, timeout=30):
        env = {k: v for k, v in os.environ.items() if k != "MAILGATE_DB"}
        return subprocess.run([self.bin, "--db", self.db, *args], capture_output=True, text=True,
                              timeout=timeout, env=env, check=False)

    def __call__(self, *args):
        p = self.run(*args)
        if p.returncode != 0:
            raise CtlError(f"mailgatectl {' '.join(args)}: exit {p.returncode}\n"
                           f"{p.stdout}{p.stderr}")
        return p.stdout

    def init(self):
        return self("init")

    def hand_edit(self, sql, params=()):
        """One statement through Python's sqlite3, with the schema's CHECKs switched off, the
        way an admin with the sqlite3 shell can break the database."""
        c = sqlite3.connect(self.db, timeout=10)
        try:
            c.execute("PRAGMA ignore_check_constraints = ON")
            c.execute(sql, params)
            c.commit()
        finally:
            c.close()

    def hand_edit_script(self, script):
        """Several statements at once (write BEGIN; ... COMMIT; for one transaction), CHECKs
        off as in hand_edit()."""
        c = sqlite3.connect(self.db, timeout=10, isolation_level=None)
        try:
            c.execute("PRAGMA ignore_check_constraints = ON")
            c.executescript(script)
        finally:
            c.close()


def log_mark(gw):
    """The index of the gateway's next log line (for wait_for_log(start=...))."""
    return len(gw.log_lines())


def wait_policy_applied(gw, mark, timeout=10.0):
    """Waits until the gateway, after log line `mark`, reloaded the policy and rebuilt its
    chains ("policy version N: plugin chains ready"); returns N."""
    m = gw.wait_for_log(r"policy version (\d+): plugin chains ready", timeout=timeout, start=mark)
    return int(m.group(1))
