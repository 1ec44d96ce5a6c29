"""python3-spf (Debian's pyspf) as an independent SPF verifier for integration tests.

    from mgtest.spfverify import verify, verifier_available
    results = verify(dns_port, [("192.0.2.25", "a@pass.spf.test", "helo.spf.test"), ...])
    # -> ["pass", ...]: spf.check2(i=ip, s=sender, h=helo)[0] for each case

python3-spf is installed for the system interpreter (/usr/bin/python3), which need not be the
interpreter running the tests, so the checks run in a child process of /usr/bin/python3 that
executes this file. pyspf uses pydns (or dnspython when installed): either is pointed at
127.0.0.1 and the given port, so it asks the same loopback DNS server as the gateway and
nothing else.
"""

import json
import os
import subprocess
import sys

SYSTEM_PYTHON = "/usr/bin/python3"


def verifier_available():
    """True when the system interpreter can import spf (python3-spf installed)."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return False
    p = subprocess.run([SYSTEM_PYTHON, "-c", "import spf"], capture_output=True, timeout=30,
                       check=False)
    return p.returncode == 0


def verify(dns_port, cases, timeout=60):
    """pyspf's result for each (ip, sender, helo) case, asking 127.0.0.1@dns_port."""
    p = subprocess.run([SYSTEM_PYTHON, os.path.abspath(__file__), str(dns_port)],
                       input=json.dumps([list(c) for c in cases]), capture_output=True,
                       text=True, timeout=timeout, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"pyspf verifier failed (exit {p.returncode}):\n{p.stdout}{p.stderr}")
    return json.loads(p.stdout)


def _main(port):
    import spf  # noqa: E402 (system interpreter only)

    try:
        import dns.resolver
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = port
        dns.resolver.default_resolver = resolver
    except ImportError:
        pass
    try:
        import DNS
        DNS.defaults["server"] = ["127.0.0.1"]
        DNS.defaults["port"] = port
    except ImportError:
        pass
    out = []
    for ip, sender, helo in json.load(sys.stdin):
        result, _explanation = spf.check2(i=ip, s=sender, h=helo, timeout=10)
        out.append(result)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    _main(int(sys.argv[1]))
