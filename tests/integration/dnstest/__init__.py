"""DNS servers on loopback for integration tests, and a tiny DNS client to check them.

    from dnstest import UnboundServer, query

    with UnboundServer(ZONES) as dns:            # real unbound(8) on 127.0.0.1, free port
        gw = self.start_gateway(flags=[f"--dns_servers={dns.forwarder}"])
        ...
        dns.kill()                               # SIGKILL by PID (cache tests)

ZONES are unbound.conf server: lines, the same syntax as the gateway's --dns_local_zones
file (local-zone:, local-data:, local-data-ptr:). The server refuses every name outside
them (local-zone: "." refuse), so nothing is ever asked off the machine. The gateway's
resolver forwards "test." names (example.test) and private and documentation reverse zones
(10/8, 192.168/16, 192.0.2/24, fd00::/8, 2001:db8::/32) to it like any other name; only
localhost., invalid., onion. and the loopback reverse zones are answered by libunbound.

Also: SilentServer (reads queries, never answers: timeouts) and FakeDnsServer(rcode)
(answers everything with one RCODE, e.g. 2 = SERVFAIL). Each stops what it started.
txt(name, record) writes a TXT record's local-data: line, long records split into strings.
"""

from .client import query, Answer
from .servers import UnboundServer, SilentServer, FakeDnsServer, unbound_binary
from .zones import txt

__all__ = ["query", "Answer", "UnboundServer", "SilentServer", "FakeDnsServer", "unbound_binary",
           "txt"]
