"""A private network namespace for tests whose clients must come from non-loopback addresses.

libspf2 gives loopback clients a free pass and SPF/DMARC tests need clients at documentation
addresses (192.0.2.x), so such a test moves its own process into a new network namespace
(unshare(CLONE_NEWNET), as root), brings lo up there and gives lo the addresses it needs.
Everything the test then starts (Postfix, unbound, the gateway, clients) lives in that
namespace and it vanishes with the process; the machine's own network is never touched.

    from mgtest.netns import private_network
    why = private_network(["192.0.2.25", "192.0.2.66"])
    if why is not None:
        raise unittest.SkipTest(f"needs its own network namespace (root): {why}")
"""

import ctypes
import os
import subprocess

CLONE_NEWNET = 0x40000000


def _ip(*args):
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)


def private_network(addresses):
    """Moves this process into a new network namespace with lo up and `addresses` (IPv4, /32)
    on it; None on success, else why not."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        return f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}"
    p = _ip("link", "set", "lo", "up")
    if p.returncode != 0:
        return f"ip link set lo up: {p.stderr.strip()}"
    for ip in addresses:
        p = _ip("addr", "add", f"{ip}/32", "dev", "lo")
        if p.returncode != 0:
            return f"ip addr add {ip}/32 dev lo: {p.stderr.strip()}"
    return None
