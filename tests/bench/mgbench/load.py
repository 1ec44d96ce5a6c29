"""Load and latency. smtp-source (Postfix's load generator) drives the throughput: each of its
sessions connects, says HELO, sends one message of `size` payload bytes (MAIL, RCPT, DATA) and
QUITs, over and over. smtp-source prints no latencies, so a probe measures them: one more
client, on a connection of its own opened once, sends a message every `interval` seconds
while the load runs and times each transaction from MAIL FROM to the reply to the end of
data. Sampling at a low rate keeps the probe's own cost out of the figures (it adds well
under 5% of the messages of a run)."""

import shutil
import socket
import subprocess
import threading
import time


def message_body(sender, recipient, size, tag):
    """A message with the headers a real one has (From, To, Date, Message-ID) and `size`
    octets of text body in 72-character lines, dot-stuffed, ended by CRLF.CRLF."""
    head = (f"From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: latency probe {tag}\r\n"
            f"Date: Sun, 22 Nov 2026 06:00:00 +0000\r\nMessage-ID: <{tag}@bench.test>\r\n\r\n")
    line = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
    body = (line * (size // len(line) + 1))[:size]
    body = body[:body.rfind("\r\n") + 2] if "\r\n" in body else body + "\r\n"
    return (head + body + ".\r\n").encode("ascii")


def smtp_source(host, port, sessions, messages, size, sender, recipient, helo, timeout):
    """Runs smtp-source to completion; returns (seconds, exit code, output)."""
    binary = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    argv = [binary, "-s", str(sessions), "-m", str(messages), "-l", str(size),
            "-f", sender, "-t", recipient, "-M", helo, f"{host}:{port}"]
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        code, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        code, out = None, f"timed out after {timeout}s: {e.stdout or ''}{e.stderr or ''}"
    return time.monotonic() - t0, code, out


class _Reader:
    def __init__(self, sock):
        self.f = sock.makefile("rb")

    def reply(self):
        """One SMTP reply (all its lines); returns its code."""
        while True:
            line = self.f.readline()
            if not line:
                raise ConnectionError("connection closed")
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3])


class LatencyProbe(threading.Thread):
    """Times transactions on one connection while the load runs; .samples (seconds),
    .errors (texts), .messages (accepted ones)."""

    def __init__(self, host, port, sender, recipient, size, interval, helo):
        super().__init__(daemon=True, name="latency-probe")
        self.addr = (host, port)
        self.sender, self.recipient, self.size = sender, recipient, size
        self.interval, self.helo = interval, helo
        self.samples, self.errors = [], []
        self.messages = 0
        self._halt = threading.Event()
        self._ready = threading.Event()

    def start_and_wait(self):
        self.start()
        self._ready.wait(10)
        return self

    def stop(self):
        self._halt.set()
        self.join(60)

    def _connect(self):
        s = socket.create_connection(self.addr, timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        r = _Reader(s)
        if r.reply() != 220:
            raise ConnectionError("no 220 greeting")
        s.sendall(f"EHLO {self.helo}\r\n".encode())
        if r.reply() != 250:
            raise ConnectionError("EHLO refused")
        return s, r

    def run(self):
        s = r = None
        n = 0
        try:
            while not self._halt.is_set():
                if s is None:
                    s, r = self._connect()
                    self._ready.set()
                n += 1
                data = message_body(self.sender, self.recipient, self.size, f"probe{n}")
                t0 = time.perf_counter()
                s.sendall(f"MAIL FROM:<{self.sender}>\r\n".encode())
                codes = [r.reply()]
                s.sendall(f"RCPT TO:<{self.recipient}>\r\n".encode())
                codes.append(r.reply())
                s.sendall(b"DATA\r\n")
                codes.append(r.reply())
                if codes != [250, 250, 354]:
                    self.errors.append(f"probe transaction {n}: replies {codes}")
                    s.sendall(b"RSET\r\n")
                    r.reply()
                else:
                    s.sendall(data)
                    code = r.reply()
                    elapsed = time.perf_counter() - t0
                    if code == 250:
                        self.samples.append(elapsed)
                        self.messages += 1
                    else:
                        self.errors.append(f"probe transaction {n}: end of data {code}")
                self._halt.wait(self.interval)
            if s is not None:
                s.sendall(b"QUIT\r\n")
        except (OSError, ConnectionError, ValueError) as e:
            self.errors.append(f"probe: {e}")
        finally:
            self._ready.set()
            if s is not None:
                s.close()


def percentile(values, p):
    """The p-th percentile (nearest rank) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(round(p / 100.0 * len(ordered) + 0.5))))
    return ordered[rank - 1]
