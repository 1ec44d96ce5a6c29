"""The processes a benchmark run measures or talks to: Postfix's smtp-sink (the backend that
throws mail away), the mailgate gateway, and Haraka forwarding to the sink. Each is started on
a port the OS picked a moment before, logs to a file in the run's directory (never a pipe the
script would have to drain while measuring) and is stopped by its PID."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time


def free_port(host):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_smtp_greeting(host, port, timeout, proc, what, log_path):
    """Waits until host:port answers with a 220 greeting; raises with the log when not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection((host, port), timeout=1) as s:
                if s.recv(512).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not greet on {host}:{port} within {timeout}s "
                       f"(exit {proc.poll()}); its log {log_path}:\n{_tail(log_path)}")


def _tail(path, n=4000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return "(no log)"


class Process:
    """A started program: .proc, .pid, .log_path; stop() sends SIGTERM then SIGKILL by PID."""

    def __init__(self, argv, log_path, cwd=None, env=None):
        self.argv = argv
        self.log_path = log_path
        log = open(log_path, "ab")
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=cwd, env=env)
        finally:
            log.close()

    @property
    def pid(self):
        return self.proc.pid

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    def log(self):
        return _tail(self.log_path, 1 << 30)


class SmtpSink(Process):
    """smtp-sink on host:port, up to `connections` sessions at once (-m)."""

    def __init__(self, workdir, host="127.0.0.1", connections=2000):
        self.host = host
        self.port = free_port(host)
        binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
        # -C: no XCLIENT (smtp-sink answers it 250, not the 220 a real MTA gives), so the
        # gateway introduces clients with XFORWARD, which smtp-sink answers like Postfix.
        argv = [binary, "-C", "-m", str(connections), "-t", "300"]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]  # smtp-sink refuses to run as root without -u
        argv += [f"{host}:{self.port}", "1024"]
        super().__init__(argv, os.path.join(workdir, "smtp-sink.log"))
        wait_smtp_greeting(host, self.port, 10, self.proc, "smtp-sink", self.log_path)


class Gateway(Process):
    """mailgate listening on host:port in front of `backend` (HOST:PORT), logging to a file."""

    def __init__(self, binary, workdir, name, backend, policy_db, plugin_dir, host, flags=()):
        self.host = host
        self.port = free_port(host)
        spool = os.path.join(workdir, f"{name}-spool")
        os.makedirs(spool, exist_ok=True)
        argv = [binary, f"--listen={host}:{self.port}", f"--backend={backend}",
                "--hostname=gateway.bench.test", f"--spool_dir={spool}",
                f"--policy_db={policy_db}", f"--plugin_dir={plugin_dir}", *flags]
        if not any(f.startswith("--dns_servers=") for f in flags):
            argv.append("--dns_servers=none")
        super().__init__(argv, os.path.join(workdir, f"{name}.log"))
        wait_smtp_greeting(host, self.port, 20, self.proc, f"mailgate ({name})", self.log_path)

    def count(self, pattern):
        return len(re.findall(pattern, self.log()))


def haraka_binary(cache):
    path = os.path.join(cache, "node_modules", ".bin", "haraka")
    return path if os.access(path, os.X_OK) else None


def install_haraka(cache, version):
    """npm install Haraka@version into `cache` (once); returns the haraka binary or None."""
    if haraka_binary(cache):
        return haraka_binary(cache)
    if not shutil.which("npm"):
        return None
    os.makedirs(cache, exist_ok=True)
    print(f"installing Haraka {version} with npm into {cache} ...", flush=True)
    p = subprocess.run(["npm", "install", "--no-audit", "--no-fund", f"Haraka@{version}"],
                       cwd=cache, capture_output=True, text=True, timeout=900, check=False)
    if p.returncode != 0:
        print(f"npm install Haraka@{version} failed (exit {p.returncode}):\n"
              f"{(p.stdout + p.stderr)[-1500:]}", flush=True)
    return haraka_binary(cache)


class Haraka(Process):
    """Haraka accepting mail for `domain` and forwarding it (queue/smtp_forward) to the sink.

    A fresh config from `haraka -i`, then only two plugins: rcpt_to.in_host_list (the
    domain is ours) and queue/smtp_forward. Log level NOTICE (Haraka's default INFO writes
    several lines per transaction). One process (no cluster), as mailgate runs one."""

    def __init__(self, binary, workdir, host, sink, domain):
        self.host = host
        self.port = free_port(host)
        root = os.path.join(workdir, "haraka")
        if not os.path.isdir(root):
            p = subprocess.run([binary, "-i", root], capture_output=True, text=True, timeout=60,
                               check=False)
            if p.returncode != 0:
                raise RuntimeError(f"haraka -i {root}: exit {p.returncode}\n{p.stdout}{p.stderr}")
        cfg = os.path.join(root, "config")

        def write(name, text):
            with open(os.path.join(cfg, name), "w") as f:
                f.write(text)

        write("smtp.ini", f"[main]\nlisten={host}:{self.port}\n")
        write("plugins", "rcpt_to.in_host_list\nqueue/smtp_forward\n")
        write("host_list", domain + "\n")
        write("smtp_forward.ini", f"host={sink.host}\nport={sink.port}\nenable_tls=false\n"
                                  f"max_connections=1000\n")
        write("loglevel", "NOTICE\n")
        write("me", "haraka.bench.test\n")
        super().__init__([binary, "-c", root], os.path.join(workdir, "haraka.log"), cwd=root)
        wait_smtp_greeting(host, self.port, 30, self.proc, "Haraka", self.log_path)
