"""Helpers for the observability tests (test_metrics, test_status_page, test_trace): the
gateway's metrics listener port (from its log), plain HTTP requests to it, the Prometheus text
format parsed into {series: value}, and one policy with two plugins that refuse things."""

import http.client
import os
import re

from . import base, util
from .policyctl import PolicyCtl, builtin_plugin

_SERVING = re.compile(r"metrics: serving http://(\[[^\]]+\]|[0-9.]+):(\d+)/")

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
BLOCKED = f"blocked@{base.DOMAIN}"


def metrics_address(gw, timeout=10):
    """(host, port) the gateway logged for --metrics_listen."""
    m = gw.wait_for_log(_SERVING.pattern, timeout=timeout)
    return m.group(1).strip("[]"), int(m.group(2))


def http_request(address, path, method="GET", timeout=10):
    """(status, headers dict, body str) of one request."""
    c = http.client.HTTPConnection(address[0], address[1], timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace")
    finally:
        c.close()


def parse_prometheus(text):
    """{'name{labels}': float} of every sample; comment lines are checked for form."""
    samples = {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("#"):
            assert re.match(r"# (HELP|TYPE) mailgate_[a-z_]+ ", line), line
            continue
        series, value = line.rsplit(" ", 1)
        samples[series] = float(value)
    return samples


def policy_with_plugins(test):
    """A fresh policy db: local domain example.test, the access plugin refusing BLOCKED at RCPT,
    then spamscore (GTUBE refused at end of data; symbols on every message)."""
    builtin_plugin("access")
    builtin_plugin("spamscore")
    d = util.make_tempdir("mailgate-obs-policy-")
    test.addCleanup(util.remove_tree, d)
    ctl = PolicyCtl(os.path.join(d, "policy.db"))
    ctl.init()
    ctl("policy", "domain", "add", base.DOMAIN)
    ctl("policy", "plugin", "add", "--name", "access", "--path", "access.so",
        "--fail-mode", "tempfail", "--timeout-ms", "2000")
    ctl("policy", "access", "add", "--stage", "recipient", "--pattern", BLOCKED,
        "--action", "deny", "--text", "blocked by the obs test")
    ctl("policy", "plugin", "add", "--name", "spamscore", "--path", "spamscore.so",
        "--fail-mode", "tempfail", "--timeout-ms", "5000")
    ctl.hand_edit("INSERT INTO spam_thresholds (domain, add_header, tempfail, reject) VALUES "
                  "('*', 5, NULL, 15)")
    return ctl


def send(test, gw, subject, rcpts=(base.USER,), body="hello\r\n", source="127.0.0.2",
         sender="sender@example.org"):
    """One transaction from `source`: returns (list of RCPT replies, final reply or None when
    no recipient was accepted)."""
    from .smtpclient import message_data
    c = test.connect(gw, source_address=(source, 0))
    test.assertEqual(c.greeting.code, 220, c.greeting)
    test.assertEqual(c.cmd("EHLO client.example").code, 250)
    test.assertEqual(c.cmd(f"MAIL FROM:<{sender}>").code, 250)
    rcpt_replies = [c.cmd(f"RCPT TO:<{r}>") for r in rcpts]
    final = None
    if any(r.code == 250 for r in rcpt_replies):
        test.assertEqual(c.cmd("DATA").code, 354)
        header = (f"From: <{sender}>\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n"
                  f"Message-ID: <{subject}@example.org>\r\n\r\n")
        final = c.data(message_data((header + body).encode()))
    c.quit()
    return rcpt_replies, final
