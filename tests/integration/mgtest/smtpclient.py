"""A raw, byte-exact SMTP client for protocol tests.

Unlike smtplib it never fixes up what it sends: bytes go out exactly as given (bare CR,
bare LF, pipelined groups, over-long lines), and replies are parsed strictly (RFC 5321
§4.2: "NNN-text" continuation lines, "NNN text" final line).
"""

import re
import socket
import time

_REPLY_LINE = re.compile(rb"^(\d{3})([ -])(.*)$", re.S)
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")


class ProtocolError(AssertionError):
    pass


class ConnectionClosed(ProtocolError):
    pass


class Reply:
    """One SMTP reply: code, text lines, and the raw wire lines (without CRLF)."""

    def __init__(self, code, lines, raw_lines):
        self.code = code
        self.lines = lines          # text after "NNN-"/"NNN " for each line
        self.raw_lines = raw_lines  # wire lines as str, e.g. ["250-host", "250 SIZE 100"]

    @property
    def text(self):
        return self.lines[-1] if self.lines else ""

    @property
    def first_line(self):
        return self.raw_lines[0]

    @property
    def enhanced(self):
        """Enhanced status code of the first line ("5.1.1"), or "" when there is none."""
        m = _ENHANCED.match(self.lines[0]) if self.lines else None
        return ".".join(m.groups()) if m else ""

    @property
    def wire(self):
        return "\n".join(self.raw_lines)

    def keywords(self):
        """For an EHLO reply: the set of upper-cased extension keywords (lines 2..n)."""
        return {line.split()[0].upper() for line in self.lines[1:] if line.strip()}

    def ehlo_params(self, keyword):
        for line in self.lines[1:]:
            parts = line.split()
            if parts and parts[0].upper() == keyword.upper():
                return parts[1:]
        return None

    def __repr__(self):
        return f"Reply({self.wire!r})"

    def __str__(self):
        return self.wire


class RawSmtp:
    """One client connection. read_greeting=True reads the 220 (or other) greeting."""

    def __init__(self, host, port, timeout=10.0, source_address=None, read_greeting=True):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=source_address)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.closed = False
        self.greeting = self.read_reply() if read_greeting else None

    # ------------------------------------------------------------------ I/O
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def send_lines(self, *lines):
        """Sends the lines, each terminated by CRLF, in one write (a pipelined group)."""
        self.send(b"".join((l.encode("utf-8") if isinstance(l, str) else l) + b"\r\n"
                           for l in lines))

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no complete reply within {self.timeout}s (have {self.buf!r})")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError(f"no complete reply within {self.timeout}s (have {self.buf!r})")
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            raise ConnectionClosed(f"connection closed by server (pending {self.buf!r})")
        self.buf += chunk

    def read_line(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\r\n" not in self.buf:
            if len(self.buf) > 100000:
                raise ProtocolError(f"reply line too long: {self.buf[:200]!r}")
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_reply(self, timeout=None):
        """Reads one complete (possibly multi-line) reply."""
        timeout = self.timeout if timeout is None else timeout
        code = None
        lines, raw = [], []
        while True:
            line = self.read_line(timeout)
            m = _REPLY_LINE.match(line)
            if not m:
                raise ProtocolError(f"malformed reply line {line!r}")
            c = int(m.group(1))
            if code is not None and c != code:
                raise ProtocolError(f"reply code changed inside a multi-line reply: {raw} {line!r}")
            code = c
            text = m.group(3).decode("utf-8", "replace")
            lines.append(text)
            raw.append(line.decode("utf-8", "replace"))
            if m.group(2) == b" ":
                return Reply(code, lines, raw)

    def read_replies(self, n, timeout=None):
        return [self.read_reply(timeout) for _ in range(n)]

    def cmd(self, line, timeout=None):
        """Sends one command line (CRLF appended) and returns its reply."""
        self.send_lines(line)
        return self.read_reply(timeout)

    def pipeline(self, *lines, timeout=None):
        """Sends the lines in one write and returns one reply per line."""
        self.send_lines(*lines)
        return self.read_replies(len(lines), timeout)

    def data(self, body, timeout=None):
        """Sends raw message bytes (already dot-stuffed, ending with CRLF.CRLF); returns reply."""
        self.send(body)
        return self.read_reply(timeout)

    def wait_closed(self, timeout=5.0):
        """True if the server closes the connection within timeout (pending data discarded)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
        except ConnectionClosed:
            return True
        except TimeoutError:
            return False
        except OSError:
            return True

    def pending(self, wait=0.2):
        """Whatever the server sends within `wait` seconds (for 'no extra reply' checks)."""
        try:
            self._fill(time.monotonic() + wait)
        except (TimeoutError, ConnectionClosed, OSError):
            pass
        data, self.buf = self.buf, b""
        return data

    def start_tls(self, context, server_hostname=None):
        """Wraps the socket in TLS (after a 220 to STARTTLS, or at once for implicit TLS).
        Bytes already received in plaintext are kept in self.buf (they should be none)."""
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)
        self.sock.settimeout(self.timeout)
        return self.sock

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def quit(self):
        try:
            r = self.cmd("QUIT")
        except (ProtocolError, OSError, TimeoutError):
            r = None
        self.close()
        return r

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def dot_stuff(body):
    """RFC 5321 §4.5.2 transparency: a leading '.' on a line is doubled. body uses CRLF."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    if body.startswith(b"."):
        body = b"." + body
    return body.replace(b"\r\n.", b"\r\n..")


def message_data(body):
    """Dot-stuffed body plus the end-of-data marker, ready for RawSmtp.data()."""
    body = dot_stuff(body)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"
