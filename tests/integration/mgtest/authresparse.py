"""python3-authres (Debian's authres, an RFC 8601 parser) as an independent reader of the
Authentication-Results fields the gateway writes.

    from mgtest.authresparse import available, parse
    parse(["mx.test; spf=pass smtp.mailfrom=a@b.test"])
    # -> [{"authserv_id": "mx.test",
    #      "results": [{"method": "spf", "result": "pass", "reason": None,
    #                   "properties": {"smtp.mailfrom": "a@b.test"}}]}]

The package is installed for the system interpreter (/usr/bin/python3), which need not be the
interpreter running the tests, so parsing runs in a child process of /usr/bin/python3 that
executes this file. A field the parser rejects raises RuntimeError with its message.
"""

import json
import os
import subprocess
import sys

SYSTEM_PYTHON = "/usr/bin/python3"


def available():
    """True when the system interpreter can import authres (python3-authres installed)."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return False
    p = subprocess.run([SYSTEM_PYTHON, "-c", "import authres"], capture_output=True,
                       timeout=30, check=False)
    return p.returncode == 0


def parse(values, timeout=60):
    """Each field value (the text after "Authentication-Results:", folding allowed) parsed."""
    p = subprocess.run([SYSTEM_PYTHON, os.path.abspath(__file__)], input=json.dumps(values),
                       capture_output=True, text=True, timeout=timeout, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"authres parser failed (exit {p.returncode}):\n{p.stdout}{p.stderr}")
    return json.loads(p.stdout)


def _main():
    import authres  # noqa: E402 (system interpreter only)

    out = []
    for value in json.load(sys.stdin):
        unfolded = value.replace("\r\n", "").replace("\n", "")
        header = authres.AuthenticationResultsHeader.parse_value(unfolded)
        results = []
        for r in header.results:
            results.append({
                "method": r.method,
                "result": r.result,
                "reason": r.reason,
                "properties": {f"{p.type}.{p.name}": p.value for p in r.properties},
            })
        out.append({"authserv_id": header.authserv_id, "results": results})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    _main()
