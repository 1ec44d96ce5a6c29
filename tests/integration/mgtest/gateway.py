"""The mailgate binary under test.

Gateway(backend_port=...) starts $MAILGATE_BIN on 127.0.0.1:0, reads its stderr in a
thread (every line kept in .lines and, when log_path is given, in a file), and parses the
real port from the "listening on ADDR:PORT" line. stop() sends SIGTERM, waits, then
SIGKILLs by PID. Use as a context manager or stop() in a finally/addCleanup.
"""

import os
import re
import signal
import subprocess
import threading
import time

from . import util

_LISTENING = re.compile(r"listening on (\[[^\]]+\]|[^\s\[\]]+?):(\d+)")


def binary_path():
    path = os.environ.get("MAILGATE_BIN")
    if not path:
        src = os.environ.get("MAILGATE_SOURCE_DIR") or os.path.join(
            os.path.dirname(__file__), "..", "..", "..")
        path = os.path.join(src, "build", "gateway", "mailgate")
    return os.path.abspath(path)


class GatewayError(RuntimeError):
    pass


class Gateway:
    """mailgate in front of 127.0.0.1:backend_port.

    flags: extra command-line flags, e.g. ["--max_recipients=3"] or {"max_recipients": 3}.
    listen: the --listen value (default 127.0.0.1:0; the bound port is parsed from the log);
        None leaves it out (e.g. when a --flagfile sets it).
    spool_dir: defaults to a fresh temp dir removed on stop().
    policy_db: the SQLite policy (created by the gateway when missing); defaults to a file in a
        fresh temp dir removed on stop().
    Unless flags set them, --dns_servers=none (no query ever leaves the machine) and
    --plugin_dir=$MAILGATE_PLUGIN_DIR (the build's plugins) are passed.
    """

    def __init__(self, backend_port=None, flags=(), binary=None, listen="127.0.0.1:0",
                 backend=None, hostname="gateway.mailgate.test", spool_dir=None,
                 log_path=None, start_timeout=10.0, log_level="info", policy_db=None):
        self.binary = binary or binary_path()
        if isinstance(flags, dict):
            flags = [f"--{k}={v}" for k, v in flags.items()]
        self.argv = [self.binary]
        if listen:
            self.argv.append(f"--listen={listen}")
        if backend is None and backend_port is not None:
            backend = f"127.0.0.1:{backend_port}"
        if backend is not None:
            self.argv.append(f"--backend={backend}")
        if hostname:
            self.argv.append(f"--hostname={hostname}")
        self._own_spool = spool_dir is None
        self.spool_dir = spool_dir or util.make_tempdir("mailgate-spool-")
        self.argv.append(f"--spool_dir={self.spool_dir}")
        if log_level:
            self.argv.append(f"--log_level={log_level}")
        flags = list(flags)
        self._policy_dir = None
        if policy_db is None and not any(f.startswith("--policy_db=") for f in flags):
            self._policy_dir = util.make_tempdir("mailgate-policy-")
            policy_db = os.path.join(self._policy_dir, "policy.db")
        self.policy_db = policy_db
        if policy_db is not None:
            self.argv.append(f"--policy_db={policy_db}")
        if not any(f.startswith("--dns_servers=") for f in flags):
            self.argv.append("--dns_servers=none")
        if os.environ.get("MAILGATE_PLUGIN_DIR") and not any(
                f.startswith("--plugin_dir=") for f in flags):
            self.argv.append(f"--plugin_dir={os.environ['MAILGATE_PLUGIN_DIR']}")
        self.argv += flags
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.proc = None
        self.lines = []
        self.listeners = []    # [(host, port)] in log order
        self.host = "127.0.0.1"
        self.port = None
        self.returncode = None
        self._cond = threading.Condition()
        self._reader = None
        self._eof = False

    # ---------------------------------------------------------------- lifecycle
    def start(self):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._read_log, daemon=True,
                                        name=f"mailgate-log-{self.proc.pid}")
        self._reader.start()
        deadline = time.monotonic() + self.start_timeout
        with self._cond:
            while not self.listeners:
                if self._eof:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        if not self.listeners:
            self.stop()
            raise GatewayError(f"mailgate did not log 'listening on' within "
                               f"{self.start_timeout}s (exit {self.returncode}); argv={self.argv}\n"
                               f"--- log:\n{self.log_text()}")
        self.host, self.port = self.listeners[0]
        return self

    def _read_log(self):
        out = open(self.log_path, "a") if self.log_path else None
        try:
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if out:
                    out.write(line + "\n")
                    out.flush()
                with self._cond:
                    self.lines.append(line)
                    m = _LISTENING.search(line)
                    if m:
                        host = m.group(1).strip("[]")
                        self.listeners.append((host, int(m.group(2))))
                    self._cond.notify_all()
        finally:
            if out:
                out.close()
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def wait(self, timeout):
        """Waits for exit; returns the exit code (raises subprocess.TimeoutExpired)."""
        self.returncode = self.proc.wait(timeout)
        if self._reader:
            self._reader.join(5)
        return self.returncode

    def stop(self, timeout=15.0):
        """SIGTERM, wait up to timeout, then SIGKILL by PID. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
        self.returncode = self.proc.returncode
        if self._reader:
            self._reader.join(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        if self._own_spool:
            util.remove_tree(self.spool_dir)
        if self._policy_dir:
            util.remove_tree(self._policy_dir)
        return self.returncode

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---------------------------------------------------------------- log access
    def log_text(self):
        with self._cond:
            return "\n".join(self.lines)

    def log_lines(self):
        with self._cond:
            return list(self.lines)

    def wait_for_log(self, pattern, timeout=10.0, start=0):
        """Waits for a log line (index >= start) matching regex `pattern`; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    m = rx.search(line)
                    if m:
                        return m
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._eof:
                    raise TimeoutError(f"no log line matching {pattern!r} within {timeout}s\n"
                                       f"--- log:\n" + "\n".join(self.lines[-60:]))
                self._cond.wait(remaining)

    def transaction_lines(self):
        """The per-transaction log lines (those containing status= and queue_id=)."""
        return [l for l in self.log_lines() if "status=" in l and "queue_id=" in l]

    def wait_for_transactions(self, n, timeout=10.0):
        util.wait_until(lambda: len(self.transaction_lines()) >= n, timeout,
                        what=f"{n} transaction log lines\n--- log:\n{self.log_text()[-4000:]}")
        return self.transaction_lines()


def parse_fields(line):
    """key=value pairs of a log line; values may be <...>, "quoted" or bare."""
    fields = {}
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|<[^>]*>|[^\s,]*)', line):
        value = m.group(2)
        if value.startswith('"') and value.endswith('"'):
            value = value[1:-1]
        fields.setdefault(m.group(1), value)
    return fields


def run_once(flags, timeout=15.0, binary=None):
    """Runs the binary to completion (for bad-flag tests): returns (exit code, output)."""
    proc = subprocess.Popen([binary or binary_path(), *flags], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out.decode("utf-8", "replace")
    return proc.returncode, out.decode("utf-8", "replace")
