"""Idle sessions: open many connections to a server, read the 220 greeting on each and keep
them open (the state of a client that connected and has not spoken yet). Connections are made
in batches so the server's listen backlog never overflows."""

import resource
import selectors
import socket
import time


def raise_fd_limit(wanted):
    """Raises RLIMIT_NOFILE (soft, and hard when allowed) to at least `wanted`; children
    inherit it. Returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    new_hard = hard if hard == resource.RLIM_INFINITY or hard >= wanted else wanted
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, new_hard))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def open_idle(host, port, count, batch=500, timeout=60):
    """Returns `count` sockets that each received a 220 greeting; raises when some did not
    within `timeout` seconds per batch."""
    done = []
    sel = selectors.DefaultSelector()
    try:
        while len(done) < count:
            pending = {}
            for _ in range(min(batch, count - len(done))):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.connect_ex((host, port))
                sel.register(s, selectors.EVENT_READ)
                pending[s] = b""
            deadline = time.monotonic() + timeout
            while pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(pending)} of a batch got no greeting within "
                                       f"{timeout}s ({len(done)} sessions open)")
                for key, _ in sel.select(left):
                    s = key.fileobj
                    try:
                        chunk = s.recv(512)
                    except BlockingIOError:
                        continue
                    except OSError as e:
                        raise ConnectionError(f"session {len(done) + 1}: {e}") from e
                    if not chunk:
                        raise ConnectionError(f"session {len(done) + 1}: closed before its "
                                              f"greeting ({pending[s]!r})")
                    pending[s] += chunk
                    if pending[s].endswith(b"\r\n"):
                        if not pending[s].startswith(b"220"):
                            raise ConnectionError(f"session {len(done) + 1}: greeted with "
                                                  f"{pending[s]!r}")
                        sel.unregister(s)
                        del pending[s]
                        done.append(s)
        return done
    except BaseException:
        for s in done:
            s.close()
        raise
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()


def close_all(sockets):
    for s in sockets:
        s.close()
