"""Background SMTP traffic for integration tests: a client thread that keeps one connection
open and sends message after message, recording every reply, so a test can change something
(policy, flags, certificates, the process itself) while mail flows and then check that no
connection dropped and every accepted message was delivered."""

import threading
import time

from . import base, util
from .smtpclient import message_data


class Sender(threading.Thread):
    """One connection, one message after another from `sender` to user@example.test, until
    stop(). Records (time, MAIL reply code, final reply code or None, subject) per message and
    any exception (a dropped connection would be one)."""

    def __init__(self, case, gw, sender, tag, pause=0.02):
        super().__init__(daemon=True, name=f"sender-{tag}")
        self.client = case.connect(gw, source_address=("127.0.0.2", 0))
        r = self.client.cmd("EHLO loop.example")
        case.assertEqual(r.code, 250, r)
        self.sender = sender
        self.tag = tag
        self.pause = pause
        self.events = []
        self.error = None
        self.quit_reply = None
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def run(self):
        c = self.client
        i = 0
        try:
            while not self._halt.is_set():
                i += 1
                subject = f"{self.tag}-{i}"
                mail = c.cmd(f"MAIL FROM:<{self.sender}>")
                final = None
                if mail.code == 250:
                    rcpt = c.cmd(f"RCPT TO:<{base.USER}>")
                    if rcpt.code != 250:
                        raise AssertionError(f"RCPT: {rcpt}")
                    if c.cmd("DATA").code != 354:
                        raise AssertionError("DATA refused")
                    final = c.data(message_data(
                        f"From: <{self.sender}>\r\nSubject: {subject}\r\n\r\nmessage {i}\r\n")).code
                with self._lock:
                    self.events.append((time.monotonic(), mail.code, final, subject))
                time.sleep(self.pause)
            self.quit_reply = c.cmd("QUIT")
        except Exception as e:  # noqa: BLE001 — reported by the test
            self.error = e

    def snapshot(self):
        with self._lock:
            return list(self.events)

    def wait_for(self, predicate, timeout, what):
        """Waits for the first event (time, mail, final, subject) matching predicate."""
        def found():
            if self.error:
                raise AssertionError(f"the looping connection failed: {self.error!r}")
            return next((e for e in self.snapshot() if predicate(e)), None)
        return util.wait_until(found, timeout, interval=0.01, what=what)

    def stop(self):
        self._halt.set()
        self.join(20)
