"""A full spool disk: the gateway answers 452 4.3.1 and loses nothing.

Owns issue 10's spool-disk-full fault. Messages larger than --spool_memory_limit go to a file
in --spool_dir; here that directory is a 512 KiB tmpfs mounted in a mount namespace of the test
process's own (unshare(CLONE_NEWNS), as root; the gateway inherits it, the machine never sees
the mount). A 2 MB message cannot be spooled: the client gets 452 4.3.1 at the end of data and
Postfix never sees it; a small message in the same session, kept in memory, is delivered; and
once space is back a large one is delivered too.
"""

import ctypes
import os
import subprocess
import unittest
import uuid

from mgtest import base, util
from mgtest.smtpclient import message_data

CLONE_NEWNS = 0x00020000


def _private_tmpfs(path, size):
    """Moves this process into its own mount namespace and mounts a tmpfs of `size` at `path`;
    None, or why not."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        return f"unshare(CLONE_NEWNS): {os.strerror(ctypes.get_errno())}"
    for argv in (["mount", "--make-rprivate", "/"],
                 ["mount", "-t", "tmpfs", "-o", f"size={size}", "mailgate-spool-test", path]):
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        if p.returncode != 0:
            return f"{' '.join(argv)}: {p.stderr.strip()}"
    return None


class SpoolFullTest(base.PostfixCase):
    def setUp(self):
        self.spool = util.make_tempdir("mailgate-spool-full-")
        self.addCleanup(util.remove_tree, self.spool)  # runs last, after the unmount
        why = _private_tmpfs(self.spool, "512k")
        if why is not None:
            raise unittest.SkipTest(f"needs its own mount namespace (root): {why}")
        self.addCleanup(lambda: subprocess.run(["umount", self.spool], check=False,
                                               capture_output=True))
        self.gw = self.start_gateway(flags=["--spool_memory_limit=65536",
                                            f"--spool_dir={self.spool}"])

    def send(self, c, subject, size):
        self.assertEqual(c.cmd(f"MAIL FROM:<a@{base.DOMAIN}>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        body = (b"y" * 78 + b"\r\n") * (size // 80)
        return c.data(message_data(f"Subject: {subject}\r\n\r\n".encode() + body), timeout=60)

    def delivered(self, subject):
        return [m for m in self.postfix.messages(base.USER) if subject.encode() in m]

    def test_full_spool_is_452_and_the_session_goes_on(self):
        t = uuid.uuid4().hex[:10]
        c = self.connect(self.gw, timeout=60)
        self.assertEqual(c.cmd("EHLO big.example.test").code, 250)
        r = self.send(c, f"too-big-{t}", 2_000_000)
        self.assertEqual((r.code, r.enhanced), (452, "4.3.1"), r)
        self.gw.wait_for_log(r"spool write failed")
        r = self.send(c, f"small-{t}", 20_000)
        self.assertEqual(r.code, 250, r)
        # Space is back (the failed message's file is gone): a spooled message goes through.
        r = self.send(c, f"spooled-{t}", 300_000)
        self.assertEqual(r.code, 250, r)
        c.quit()
        util.wait_until(lambda: self.delivered(f"spooled-{t}") and self.delivered(f"small-{t}"),
                        20, what="the two accepted messages in the mailbox")
        self.assertEqual(self.delivered(f"too-big-{t}"), [])
        self.assertEqual(os.listdir(self.spool), [], "a spool file was left behind")
