"""Golden SMTP transcripts (transcripts/*.in + *.ref) through the real gateway and Postfix,
plus the protocol checks that do not fit a fixed transcript (error limit)."""

import glob
import os
import re
import shlex
import unittest

from mgtest.base import PostfixCase
from mgtest.smtpclient import ConnectionClosed, RawSmtp

HERE = os.path.dirname(os.path.abspath(__file__))
TRANSCRIPTS = os.path.join(HERE, "transcripts")
_REPEAT = re.compile(r"\{\{repeat (\d+) (.)\}\}")


class Expect:
    """One expected reply: a literal or regex for the first line, &-regexes for others."""

    def __init__(self, spec, lineno):
        self.lineno = lineno
        self.closed = spec == "<closed>"
        self.regex = re.compile(spec[1:]) if spec.startswith("~") else None
        self.literal = None if (self.regex or self.closed) else spec
        self.others = []
        self.spec = spec

    def check(self, reply):
        """None when the reply matches, else a description of the mismatch."""
        if self.closed:
            return f"expected the connection to close, got {reply.wire!r}"
        first = reply.first_line
        if self.literal is not None and first != self.literal:
            return f"expected {self.literal!r}, got {first!r}"
        if self.regex is not None and not self.regex.fullmatch(first):
            return f"expected /{self.regex.pattern}/, got {first!r}"
        for rx in self.others:
            if not any(rx.fullmatch(text) for text in reply.lines[1:]):
                return f"no line of {reply.raw_lines} matches &{rx.pattern}"
        return None

    def __str__(self):
        return self.spec + "".join(f" &{rx.pattern}" for rx in self.others)


def parse_in(path):
    """(flags, [[line bytes, ...], ...]) from a .in file."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    flags, groups, current = [], [], []
    for line in lines:
        if line.startswith("##"):
            m = re.match(r"##\s*flags:(.*)", line)
            if m:
                flags += shlex.split(m.group(1))
            continue
        if line == "--":
            groups.append(current)
            current = []
            continue
        line = _REPEAT.sub(lambda m: m.group(2) * int(m.group(1)), line)
        current.append(line.encode("utf-8"))
    groups.append(current)
    return flags, groups


def parse_ref(path):
    groups, current = [], []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            if line == "--":
                groups.append(current)
                current = []
            elif line.startswith("&"):
                if not current:
                    raise ValueError(f"{path}:{lineno}: '&' line without a reply entry")
                current[-1].others.append(re.compile(line[1:]))
            else:
                current.append(Expect(line, lineno))
    groups.append(current)
    return groups


class TranscriptTest(PostfixCase):

    def run_transcript(self, name):
        flags, in_groups = parse_in(os.path.join(TRANSCRIPTS, name + ".in"))
        ref_groups = parse_ref(os.path.join(TRANSCRIPTS, name + ".ref"))
        self.assertEqual(len(ref_groups), len(in_groups) + 1,
                         f"{name}: .ref needs one group more than .in (the greeting first)")
        gw = self.start_gateway(flags=flags)
        c = RawSmtp(gw.host, gw.port, read_greeting=False)
        self.addCleanup(c.close)
        transcript = []   # what happened, for the failure message
        closed = False

        def fail(why):
            self.fail(f"{name}: {why}\n--- transcript so far:\n" + "\n".join(transcript) +
                      f"\n--- gateway log (tail):\n{gw.log_text()[-3000:]}")

        for index, expects in enumerate(ref_groups):
            if index > 0:
                data = b"".join(line + b"\r\n" for line in in_groups[index - 1])
                for line in in_groups[index - 1]:
                    transcript.append("C: " + line.decode("utf-8", "replace")[:120])
                if closed:
                    fail("input left after the connection closed")
                try:
                    c.send(data)
                except OSError as e:
                    fail(f"send failed: {e}")
            for exp in expects:
                try:
                    reply = c.read_reply(timeout=15)
                except ConnectionClosed:
                    if exp.closed:
                        transcript.append("S: <closed>")
                        closed = True
                        continue
                    fail(f"connection closed; expected {exp} (.ref line {exp.lineno})")
                except TimeoutError:
                    fail(f"no reply within 15s; expected {exp} (.ref line {exp.lineno})")
                for raw in reply.raw_lines:
                    transcript.append("S: " + raw)
                why = exp.check(reply)
                if why:
                    fail(f".ref line {exp.lineno}: {why}")
        if not closed:
            extra = c.pending(0.3)
            if extra:
                fail(f"unexpected extra output after the last reply: {extra!r}")

    def test_error_limit_421_and_close(self):
        """--max_errors=3: at the latest after the third error the server says 421 and closes.
        (Whether the third error's own reply comes before the 421 is the server's choice.)"""
        gw = self.start_gateway(flags=["--max_errors=3"])
        c = self.connect(gw)
        self.assertEqual(c.cmd("EHLO client.example.org").code, 250)
        got = []
        for i in range(4):
            try:
                c.send_lines(f"BOGUS{i}")
                got.append(c.read_reply(timeout=5))
                if got[-1].code != 421:
                    # Postfix style: the error reply, then at once 421 without a new command.
                    got.append(c.read_reply(timeout=0.5))
            except TimeoutError:
                continue
            except (ConnectionClosed, OSError):
                break
            if got[-1].code == 421:
                break
        codes = [r.code for r in got]
        self.assertIn(421, codes, got)
        self.assertEqual(got[-1].code, 421, got)
        self.assertRegex(got[-1].enhanced, r"^4\.\d+\.\d+$", got)
        self.assertLessEqual(len([x for x in codes if x != 421]), 3, got)
        self.assertTrue(all(x in (500, 502) for x in codes[:-1]), got)
        self.assertTrue(c.wait_closed(5), "connection not closed after 421")

    def test_idle_client_timeout_421(self):
        gw = self.start_gateway(flags=["--client_timeout=1"])
        c = self.connect(gw)
        self.assertEqual(c.cmd("EHLO client.example.org").code, 250)
        r = c.read_reply(timeout=6)
        self.assertEqual((r.code, r.enhanced), (421, "4.4.2"), r)
        self.assertTrue(c.wait_closed(5))


def _add_transcript_tests():
    for path in sorted(glob.glob(os.path.join(TRANSCRIPTS, "*.in"))):
        name = os.path.splitext(os.path.basename(path))[0]

        def test(self, name=name):
            self.run_transcript(name)

        test.__doc__ = f"transcript {name}"
        setattr(TranscriptTest, f"test_transcript_{name}", test)


_add_transcript_tests()

if __name__ == "__main__":
    unittest.main()
