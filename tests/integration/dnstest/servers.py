"""DNS servers on 127.0.0.1 for tests. Each object stops what it started (stop(), or leave
the `with` block); unbound is stopped by the PID it was started with."""

import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

from .client import query


def unbound_binary():
    """Path of unbound(8), or None."""
    for path in ("/usr/sbin/unbound", "/usr/local/sbin/unbound"):
        if os.access(path, os.X_OK):
            return path
    return shutil.which("unbound")


def _free_dns_port():
    """A port free for UDP and TCP on 127.0.0.1 a moment ago."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port on 127.0.0.1")


class UnboundServer:
    """A real unbound serving `zones` (unbound.conf server: lines) on 127.0.0.1.

    .port, .forwarder ("127.0.0.1@PORT", the form --dns_servers takes), .pid, .log().
    """

    def __init__(self, zones, tmpdir=None):
        self.zones = zones
        self.port = None
        self.proc = None
        self._own_dir = tmpdir is None
        self.dir = tmpdir or tempfile.mkdtemp(prefix="mailgate-unbound-")
        os.makedirs(self.dir, exist_ok=True)

    @property
    def forwarder(self):
        return f"127.0.0.1@{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def _write_config(self):
        lines = [
            "server:",
            "  interface: 127.0.0.1",
            f"  port: {self.port}",
            "  do-ip6: no",
            "  do-daemonize: no",
            '  chroot: ""',
            '  username: ""',
            f'  directory: "{self.dir}"',
            f'  pidfile: "{self.dir}/unbound.pid"',
            "  use-syslog: no",
            '  logfile: ""',
            "  verbosity: 1",
            "  num-threads: 1",
            '  module-config: "iterator"',
            "  access-control: 127.0.0.0/8 allow",
            '  local-zone: "." refuse',
        ]
        for line in self.zones.splitlines():
            line = line.strip()
            if line and not line.startswith("server:"):
                lines.append("  " + line)
        lines += ["remote-control:", "  control-enable: no", ""]
        with open(os.path.join(self.dir, "unbound.conf"), "w") as f:
            f.write("\n".join(lines))

    def start(self, timeout=10.0):
        binary = unbound_binary()
        if not binary:
            raise FileNotFoundError("unbound(8) is not installed")
        last_log = ""
        for _ in range(5):
            self.port = _free_dns_port()
            self._write_config()
            log = open(os.path.join(self.dir, "unbound.log"), "ab")
            try:
                self.proc = subprocess.Popen(
                    [binary, "-d", "-c", os.path.join(self.dir, "unbound.conf")],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            finally:
                log.close()
            if self._wait_ready(timeout):
                return self
            last_log = self.log()
            self.stop()
        raise RuntimeError(f"unbound did not start; its log:\n{last_log}")

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # exited: port taken or bad config
            try:
                query(self.port, "ready.probe.invalid", "A", timeout=0.2)
                return True   # any answer (REFUSED here) means it serves
            except (TimeoutError, OSError):
                pass
        return False

    def log(self):
        try:
            with open(os.path.join(self.dir, "unbound.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _signal(self, sig, timeout):
        if not self.proc:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def kill(self):
        """SIGKILL now; the server is gone when this returns."""
        self._signal(signal.SIGKILL, 10)

    def stop(self):
        """SIGTERM, then SIGKILL after 5 s."""
        self._signal(signal.SIGTERM, 5)

    def close(self):
        self.stop()
        if self._own_dir and not os.environ.get("MAILGATE_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.close()


class SilentServer:
    """A UDP socket on 127.0.0.1 that never answers."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    @property
    def forwarder(self):
        return f"127.0.0.1@{self.port}"

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FakeDnsServer:
    """Answers every UDP query on 127.0.0.1 with `rcode` (question echoed, no records)."""

    def __init__(self, rcode=2):
        self.rcode = rcode
        self.queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="fake-dns")
        self._thread.start()

    @property
    def forwarder(self):
        return f"127.0.0.1@{self.port}"

    def _serve(self):
        while not self._stop.is_set():
            try:
                msg, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(msg) < 12:
                continue
            pos = 12
            while pos < len(msg) and msg[pos] != 0:
                pos += msg[pos] + 1
            pos += 5
            if pos > len(msg):
                continue
            self.queries += 1
            flags = struct.unpack_from(">H", msg, 2)[0]
            header = struct.pack(">HHHHHH", struct.unpack_from(">H", msg, 0)[0],
                                 0x8080 | (flags & 0x7900) | (self.rcode & 0xF), 1, 0, 0, 0)
            self.sock.sendto(header + msg[12:pos], peer)

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
