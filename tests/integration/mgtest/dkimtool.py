"""python3-dkim (Debian's dkimpy) as an independent DKIM signer and verifier for integration
tests.

    from mgtest.dkimtool import available, run
    out = run([{"op": "sign", "message": text, "domain": "dkim.test", "selector": "s1",
                "key": pem_text, "alg": "rsa-sha256", "canon": "relaxed/relaxed"},
               {"op": "verify", "message": signed_text, "dns_port": 5353},
               {"op": "ed25519_keygen"},
               {"op": "verify_keys", "message": signed_text,
                "keys": {"s1._domainkey.dkim.test": "v=DKIM1; k=rsa; p=..."}}])
    # -> [signed_text, [True, False, ...] (one per DKIM-Signature, top first),
    #     {"private": base64 seed, "public": base64 key}, [True, ...]]
    # verify_keys takes the key records from the operation instead of DNS (for unit tests).

python3-dkim is installed for the system interpreter (/usr/bin/python3), which need not be the
interpreter running the tests, so the operations run in a child process of /usr/bin/python3
that executes this file. Verification asks 127.0.0.1 at the given port (dnspython) for the key
records, so it sees the same loopback DNS server as the gateway and nothing else.
"""

import json
import os
import subprocess
import sys

SYSTEM_PYTHON = "/usr/bin/python3"


def available():
    """True when the system interpreter can import dkim (python3-dkim installed)."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return False
    p = subprocess.run([SYSTEM_PYTHON, "-c", "import dkim, dns.resolver"], capture_output=True,
                       timeout=30, check=False)
    return p.returncode == 0


def run(ops, timeout=120):
    """The result of each operation (see the module docstring)."""
    p = subprocess.run([SYSTEM_PYTHON, os.path.abspath(__file__)], input=json.dumps(ops),
                       capture_output=True, text=True, timeout=timeout, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"dkimpy helper failed (exit {p.returncode}):\n{p.stdout}{p.stderr}")
    return json.loads(p.stdout)


def _main():
    import base64

    import dkim  # noqa: E402 (system interpreter only)
    import dns.resolver

    def dnsfunc_for(port):
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = port

        def get_txt(name, timeout=5):
            if isinstance(name, bytes):
                name = name.decode("ascii")
            try:
                answer = resolver.resolve(name, "TXT", lifetime=timeout)
            except Exception:  # NXDOMAIN, NODATA, timeout: no key
                return None
            for rr in answer:
                return b"".join(rr.strings)
            return None

        return get_txt

    def verify_all(message, dnsfunc):
        d = dkim.DKIM(message, minkey=1)
        count = sum(1 for name, _ in d.headers if name.lower() == b"dkim-signature")
        results = []
        for i in range(count):
            try:
                results.append(bool(d.verify(idx=i, dnsfunc=dnsfunc)))
            except Exception:
                results.append(False)
        return results

    out = []
    for op in json.load(sys.stdin):
        if op["op"] == "sign":
            hc, bc = op.get("canon", "relaxed/relaxed").split("/")
            key = op["key"].encode("ascii")
            sig = dkim.sign(op["message"].encode("utf-8"), op["selector"].encode("ascii"),
                            op["domain"].encode("ascii"), key,
                            canonicalize=(hc.encode(), bc.encode()),
                            signature_algorithm=op.get("alg", "rsa-sha256").encode("ascii"),
                            include_headers=[b"from", b"to", b"subject", b"date",
                                             b"message-id"])
            out.append(sig.decode("ascii") + op["message"])
        elif op["op"] == "verify":
            message = op["message"].encode("utf-8")
            d = dkim.DKIM(message, minkey=1)
            count = sum(1 for name, _ in d.headers if name.lower() == b"dkim-signature")
            results = []
            for i in range(count):
                try:
                    results.append(bool(d.verify(idx=i, dnsfunc=dnsfunc_for(op["dns_port"]))))
                except Exception:
                    results.append(False)
            out.append(results)
        elif op["op"] == "verify_keys":
            keys = {k.lower().rstrip("."): v.encode("ascii") for k, v in op["keys"].items()}

            def from_keys(name, timeout=5):
                if isinstance(name, bytes):
                    name = name.decode("ascii")
                return keys.get(name.lower().rstrip("."))

            out.append(verify_all(op["message"].encode("utf-8"), from_keys))
        elif op["op"] == "ed25519_keygen":
            import nacl.signing
            sk = nacl.signing.SigningKey.generate()
            out.append({"private": base64.b64encode(bytes(sk)).decode("ascii"),
                        "public": base64.b64encode(bytes(sk.verify_key)).decode("ascii")})
        else:
            raise ValueError(f"unknown op {op['op']!r}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    _main()
