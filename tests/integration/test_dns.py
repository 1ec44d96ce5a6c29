"""DNS test servers for integration tests (tests/integration/dnstest/): a real unbound on
loopback serving test zones, stopped by PID; a server that never answers; one that answers
SERVFAIL. And, once the daemon reads the --dns_* flags, that a bad --dns_servers stops it
with an error naming the item.

The resolver itself (cache, timeouts, SERVFAIL, failover) is tested against the same kind
of unbound by tests/unit/dns/resolver_server_test.cc.
"""

import os
import time
import unittest

from dnstest import FakeDnsServer, SilentServer, UnboundServer, query, unbound_binary
from mgtest.gateway import binary_path, run_once

ZONES = """
local-zone: "dnstest.example." static
local-data: "dnstest.example. 3600 IN SOA ns.dnstest.example. hostmaster.dnstest.example. 1 3600 600 86400 60"
local-data: "dnstest.example. 300 IN MX 10 mx1.dnstest.example."
local-data: "dnstest.example. 300 IN MX 20 mx2.dnstest.example."
local-data: "mx1.dnstest.example. 300 IN A 192.0.2.25"
local-data: 'dnstest.example. 300 IN TXT "v=spf1 ip4:192.0.2.0/24" " -all"'
local-zone: "10.in-addr.arpa." static
local-data-ptr: "10.0.0.25 mx1.dnstest.example."
"""


@unittest.skipUnless(unbound_binary(), "unbound(8) is not installed")
class UnboundServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = UnboundServer(ZONES).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_serves_the_zones(self):
        port = self.server.port
        mx = query(port, "dnstest.example", "MX")
        self.assertEqual(mx.rcode_name, "NOERROR")
        self.assertEqual(sorted(mx.values("MX")),
                         [(10, "mx1.dnstest.example"), (20, "mx2.dnstest.example")])
        self.assertEqual(query(port, "mx1.dnstest.example", "A").values("A"), ["192.0.2.25"])
        self.assertEqual(query(port, "dnstest.example", "TXT").values("TXT"),
                         [("v=spf1 ip4:192.0.2.0/24", " -all")])
        self.assertEqual(query(port, "25.0.0.10.in-addr.arpa", "PTR").values("PTR"),
                         ["mx1.dnstest.example"])
        self.assertEqual(query(port, "nope.dnstest.example", "A").rcode_name, "NXDOMAIN")
        self.assertEqual(query(port, "mx1.dnstest.example", "MX").records, [])

    def test_refuses_everything_else(self):
        # Nothing outside the test zones is ever looked up on the network.
        self.assertEqual(query(self.server.port, "www.example.com", "A").rcode_name, "REFUSED")


@unittest.skipUnless(unbound_binary(), "unbound(8) is not installed")
class UnboundLifecycleTest(unittest.TestCase):
    def test_kill_stops_it_by_pid(self):
        with UnboundServer(ZONES) as server:
            pid, port = server.pid, server.port
            self.assertEqual(query(port, "mx1.dnstest.example").rcode_name, "NOERROR")
            server.kill()
            self.assertIsNone(server.pid)
            with self.assertRaises(ProcessLookupError):
                os.kill(pid, 0)
            with self.assertRaises((TimeoutError, ConnectionRefusedError)):
                query(port, "mx1.dnstest.example", timeout=0.3)

    def test_two_servers_get_their_own_ports(self):
        with UnboundServer(ZONES) as a, UnboundServer(ZONES) as b:
            self.assertNotEqual(a.port, b.port)
            self.assertEqual(query(b.port, "mx1.dnstest.example").values("A"), ["192.0.2.25"])


class FakeServersTest(unittest.TestCase):
    def test_silent_server_never_answers(self):
        with SilentServer() as silent:
            start = time.monotonic()
            with self.assertRaises(TimeoutError):
                query(silent.port, "a.dnstest.example", timeout=0.3)
            self.assertGreaterEqual(time.monotonic() - start, 0.25)

    def test_fake_server_answers_servfail(self):
        with FakeDnsServer(rcode=2) as fake:
            self.assertEqual(query(fake.port, "a.dnstest.example", "MX").rcode_name, "SERVFAIL")
            self.assertEqual(fake.queries, 1)


def _daemon_reads_dns_flags():
    """True when the daemon binary exists and defines the --dns_* flags (dns/dns_flags.cc
    linked in, i.e. main calls dns::config_from_flags())."""
    if not os.access(binary_path(), os.X_OK):
        return False
    _, out = run_once(["--helpmatch=dns_flags"], timeout=10)
    return "dns_servers" in (out or "")


@unittest.skipUnless(_daemon_reads_dns_flags(), "the daemon does not define --dns_servers yet")
class GatewayDnsFlagsTest(unittest.TestCase):
    def test_bad_forwarder_is_refused_with_its_name(self):
        code, out = run_once(["--listen=127.0.0.1:0", "--dns_servers=127.0.0.1@5353,bogus"])
        self.assertNotEqual(code, 0, out)
        self.assertIn("--dns_servers: forwarder 'bogus'", out)

    def test_bad_timeout_is_refused(self):
        code, out = run_once(["--listen=127.0.0.1:0", "--dns_timeout_ms=0"])
        self.assertNotEqual(code, 0, out)
        self.assertIn("--dns_timeout_ms", out)


if __name__ == "__main__":
    unittest.main()
