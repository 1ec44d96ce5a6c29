"""A private redis-server on loopback for the tests that share counters between gateways.

    r = RedisServer(tmpdir)  # nothing written to disk besides its log
    r.start()                # a free port: bind port 0, close, start redis there (retried)
    r.address                # "127.0.0.1:PORT" for --redis=
    r.kill()                 # SIGKILL by PID (a crash)
    r.restart()              # again on the same port
    r.pause() / r.resume()   # SIGSTOP / SIGCONT (a hung server)
    r.stop()                 # everything it started is gone
"""

import os
import signal
import socket
import subprocess
import time


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class RedisServer:
    def __init__(self, tmpdir):
        self.dir = tmpdir
        self.port = None
        self.proc = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self, attempts=5):
        last = None
        for _ in range(attempts):
            self.port = _free_port()
            try:
                self._launch()
                return self
            except RuntimeError as e:  # the port was taken meanwhile: another one
                last = e
        raise RuntimeError(f"redis-server did not start: {last}")

    def restart(self):
        self._launch()
        return self

    def _launch(self):
        log = open(os.path.join(self.dir, f"redis-{self.port}.log"), "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _accepts(self.port):
                return
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError(f"redis-server exited at start on port {self.port}")
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server did not accept on port {self.port} within 10 s")

    def kill(self):
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self):
        self.kill()
