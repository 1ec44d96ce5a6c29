"""unittest base classes: one private Postfix per test file, one gateway per test."""

import os
import unittest

from . import util
from .gateway import Gateway, binary_path
from .postfix import PostfixInstance, start_all, stop_all
from .smtpclient import RawSmtp

DOMAIN = "example.test"
USER = f"user@{DOMAIN}"
USERS = ("user", "other", "alice", "bob")


def require_binary():
    """The binary under test; a missing binary fails the test file with the path it tried."""
    path = binary_path()
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"mailgate binary not found or not executable: {path} "
                                f"(set MAILGATE_BIN)")
    return path


class PostfixCase(unittest.TestCase):
    """setUpClass starts a private Postfix (self.postfix); tests start gateways with
    self.start_gateway(), stopped automatically by addCleanup."""

    postfix_users = USERS
    postfix_domains = (DOMAIN,)  # virtual mailbox domains; bare postfix_users exist in each
    postfix_extra_main = None

    @classmethod
    def setUpClass(cls):
        require_binary()
        cls.tmpdir = util.make_tempdir()
        cls.postfix = PostfixInstance(os.path.join(cls.tmpdir, "postfix"), users=cls.postfix_users,
                                      domains=cls.postfix_domains,
                                      extra_main=cls.postfix_extra_main)
        start_all([cls.postfix], cls.tmpdir)

    @classmethod
    def tearDownClass(cls):
        stop_all([cls.postfix], cls.tmpdir)

    def start_gateway(self, flags=(), backend_port=None, **kw):
        gw = Gateway(backend_port=backend_port or self.postfix.port, flags=flags, **kw)
        self.addCleanup(self._dump_log_on_failure, gw, self._problem_count())
        gw.start()
        self.addCleanup(gw.stop)
        return gw

    def _problem_count(self):
        # unittest has no public "did this test fail" hook; count the result's problems.
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is None:
            return None
        return len(result.failures) + len(result.errors)

    def _dump_log_on_failure(self, gw, before):
        now = self._problem_count()
        if os.environ.get("MAILGATE_VERBOSE") or (
                before is not None and now is not None and now > before):
            print(f"\n--- mailgate log ({' '.join(gw.argv)}):\n{gw.log_text()[-20000:]}\n"
                  f"--- postfix maillog (tail):\n{self.postfix.maillog()[-4000:]}")

    def connect(self, gw, **kw):
        c = RawSmtp(gw.host, gw.port, **kw)
        self.addCleanup(c.close)
        return c

    def delivered(self, subject):
        """The first message in USER's mailbox with that Subject, as text; None when none."""
        for m in self.postfix.messages(USER):
            if f"Subject: {subject}".encode() in m:
                return m.decode("utf-8", "replace")
        return None

    def wait_delivered(self, subject):
        """delivered(subject), waiting up to 20 s for Postfix to deliver it."""
        util.wait_until(lambda: self.delivered(subject) is not None, 20,
                        what=f"delivery of {subject!r}\n{self.postfix.maillog()[-3000:]}")
        return self.delivered(subject)

    def counts(self):
        return {u: len(m) for u, m in self.postfix.all_messages().items()}
