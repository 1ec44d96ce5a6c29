"""No lost mail when the gateway is killed: senders keep sending through the gateway in front of
a real Postfix while it is SIGKILLed at random moments and started again.

Owns issue 10's crash test. Two sender threads (Python's smtplib, a real client) each send
their share of messages, retrying every message that was not answered 250 at the end of data —
as a real MTA retries after an error or a dropped connection. A killer thread SIGKILLs the
running gateway (by PID) at random intervals, so deaths land before MAIL, in the middle of
DATA, and between the backend's 250 and the client's, and starts a new one (a new port,
which the senders pick up on their next attempt). At the end every message a sender saw
accepted must be in the mailbox (zero lost), and the only duplicates allowed are those the
gateway died for between the backend's 250 and the client's: each duplicate must be a message
whose sender saw at least one failed attempt. The figures are printed.
"""

import os
import random
import re
import signal
import smtplib
import threading
import time
import uuid

from mgtest import base, util

MESSAGES = 1200
SENDERS = 2
BODY_LINES = 200  # ~15 KB: kills land in DATA often


def message(token, n):
    lines = "".join(f"line {i:04d} of message {n} {token} ................................\r\n"
                    for i in range(BODY_LINES))
    return (f"From: <sender@{base.DOMAIN}>\r\n"
            f"To: <{base.USER}>\r\n"
            f"Subject: crash-{token}-{n:04d}\r\n"
            f"Message-ID: <{token}.{n}@{base.DOMAIN}>\r\n"
            f"\r\n{lines}")


class CrashNoLossTest(base.PostfixCase):
    def start_one(self):
        return self.start_gateway()

    def test_killed_gateway_loses_no_accepted_message(self):
        token = uuid.uuid4().hex[:10]
        lock = threading.Lock()
        current = {"gw": self.start_one()}
        stop = threading.Event()
        accepted = {}   # n -> attempts it took
        failures = {}   # n -> failed attempts (error reply or dropped connection)
        kills = []

        def port():
            with lock:
                return current["gw"].port

        def sender(numbers):
            for n in numbers:
                attempts = 0
                while True:
                    attempts += 1
                    if attempts > 200:
                        raise AssertionError(f"message {n} never accepted")
                    try:
                        with smtplib.SMTP("127.0.0.1", port(), timeout=20) as s:
                            s.ehlo("sender.example.test")
                            s.sendmail(f"sender@{base.DOMAIN}", [base.USER],
                                       message(token, n).encode("ascii"))
                        accepted[n] = attempts
                        break
                    except (smtplib.SMTPException, OSError):
                        failures[n] = failures.get(n, 0) + 1
                        time.sleep(0.05)

        def killer():
            rng = random.Random(os.getpid())
            while not stop.wait(rng.uniform(0.1, 0.4)):
                with lock:
                    old = current["gw"]
                old.signal(signal.SIGKILL)
                old.wait(10)
                kills.append(time.monotonic())
                new = self.start_one()
                with lock:
                    current["gw"] = new

        threads = [threading.Thread(target=sender, args=(range(i, MESSAGES, SENDERS),))
                   for i in range(SENDERS)]
        k = threading.Thread(target=killer)
        started = time.monotonic()
        for t in threads:
            t.start()
        k.start()
        for t in threads:
            t.join(240)
        stop.set()
        k.join(30)
        elapsed = time.monotonic() - started
        self.assertFalse(any(t.is_alive() for t in threads), "a sender is stuck")
        self.assertEqual(len(accepted), MESSAGES)

        subject = re.compile(rf"^Subject: crash-{token}-(\d{{4}})\r?$".encode(), re.M)

        def delivered_counts():
            counts = {}
            for m in self.postfix.messages(base.USER):
                found = subject.search(m)
                if found:
                    n = int(found.group(1))
                    counts[n] = counts.get(n, 0) + 1
            return counts

        util.wait_until(lambda: len(delivered_counts()) == MESSAGES, 120,
                        what="every accepted message in the mailbox")
        counts = delivered_counts()
        lost = sorted(n for n in accepted if counts.get(n, 0) == 0)
        duplicates = sorted(n for n, c in counts.items() if c > 1)
        print(f"\ncrash test: {MESSAGES} messages, {len(kills)} SIGKILLs in {elapsed:.1f} s, "
              f"{sum(failures.values())} failed attempts retried, lost {len(lost)}, "
              f"duplicates {len(duplicates)} "
              f"(each one a message whose 250 was lost with the gateway)")
        self.assertGreaterEqual(len(kills), 5, "the gateway was hardly killed: no test")
        self.assertEqual(lost, [], "accepted messages missing from the mailbox")
        # A duplicate needs a delivery the sender did not see acknowledged: a failed attempt.
        self.assertEqual([n for n in duplicates if failures.get(n, 0) == 0], [])
