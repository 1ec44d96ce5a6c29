"""Small shared helpers: free loopback ports, polling, temp dirs."""

import os
import shutil
import socket
import tempfile
import time


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Polls predicate() until it returns a truthy value; returns it or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_accepts(host, port, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def make_tempdir(prefix="mailgate-it-"):
    """A temp dir that Postfix's unprivileged daemons (postfix, nobody) can traverse.

    tempfile.mkdtemp() creates mode 0700 dirs; Postfix daemons run as the `postfix` user
    and virtual(8) delivers as uid 65534, so every parent must be searchable.
    """
    path = tempfile.mkdtemp(prefix=prefix)
    os.chmod(path, 0o755)
    return path


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)


def pid_alive(pid):
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    # State is the field after the parenthesised command name.
    state = stat[stat.rfind(b")") + 2:stat.rfind(b")") + 3]
    return state not in (b"Z", b"X", b"")


def sanitized_binary(path):
    """True when `path` was built with AddressSanitizer (its runtime is linked in): memory
    figures are then dominated by ASan's shadow memory and quarantine, not the program's."""
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()
