"""A scripted fake SMTP backend for failure tests (slow or silent MTAs).

FakeBackend(mode) listens on 127.0.0.1:0 and serves each connection in a thread:
  "no_greeting"     accept the TCP connection and never say anything
  "hang_at_mail"    greet and answer EHLO/XCLIENT/XFORWARD, then never answer MAIL
  "hang_after_data" behave like a normal MTA until the final ".", then never answer
Everything received is recorded per connection (.sessions) for assertions.
"""

import socket
import threading


class FakeBackend:
    def __init__(self, mode="hang_after_data", hostname="fake.mailgate.test"):
        assert mode in ("no_greeting", "hang_at_mail", "hang_after_data"), mode
        self.mode = mode
        self.hostname = hostname
        self.sessions = []          # list of bytearray, one per connection
        self.accepted = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns = []
        self._threads = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]

    def start(self):
        t = threading.Thread(target=self._accept_loop, daemon=True, name="fake-backend")
        t.start()
        self._threads.append(t)
        return self

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                record = bytearray()
                self.sessions.append(record)
                self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn, record), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn, record):
        conn.settimeout(0.2)
        buf = b""
        in_data = False

        def reply(text):
            conn.sendall(text.encode() + b"\r\n")

        try:
            if self.mode == "no_greeting":
                self._drain(conn, record)
                return
            reply(f"220 {self.hostname} ESMTP fake")
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                record.extend(chunk)
                buf += chunk
                while b"\r\n" in buf:
                    line, buf = buf.split(b"\r\n", 1)
                    if in_data:
                        if line == b".":
                            in_data = False
                            # hang_after_data: never answer the final dot.
                            self._drain(conn, record)
                            return
                        continue
                    verb = line.split(b" ", 1)[0].upper()
                    if verb == b"EHLO":
                        reply(f"250-{self.hostname}\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
                              "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8")
                    elif verb == b"HELO":
                        reply(f"250 {self.hostname}")
                    elif verb == b"MAIL":
                        if self.mode == "hang_at_mail":
                            self._drain(conn, record)
                            return
                        reply("250 2.1.0 Ok")
                    elif verb == b"RCPT":
                        reply("250 2.1.5 Ok")
                    elif verb == b"DATA":
                        in_data = True
                        reply("354 End data with <CR><LF>.<CR><LF>")
                    elif verb == b"RSET" or verb == b"NOOP":
                        reply("250 2.0.0 Ok")
                    elif verb == b"QUIT":
                        reply("221 2.0.0 Bye")
                        return
                    else:
                        reply("502 5.5.2 Error: command not recognized")
        except OSError:
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _drain(self, conn, record):
        """Reads (and records) until the peer closes or the backend is stopped; never replies."""
        while not self._stop.is_set():
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not chunk:
                return
            record.extend(chunk)

    def received(self):
        with self._lock:
            return b"".join(bytes(s) for s in self.sessions)

    def stop(self):
        self._stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
