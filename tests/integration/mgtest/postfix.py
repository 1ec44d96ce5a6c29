"""A private Postfix instance on loopback, used as mailgate's backend in tests.

Layout under `directory` (everything the instance owns; /etc/postfix is never touched):
    etc/        config_directory: main.cf, master.cf, vmailbox (texthash map)
    queue/      queue_directory (root-owned; post-install creates the subdirectories)
    data/       data_directory
    mail/       virtual_mailbox_base: mail/<domain>/<localpart>/{new,cur,tmp}
    maillog     maillog_file, written by postlogd (there is no syslog in the sandbox)

Run as root: `postfix -c DIR start` starts the instance's own master(8), which passes
MAIL_CONFIG=DIR to its daemons. Postfix wants a non-default config directory listed in the
default main.cf (`alternate_config_directories`) only when the caller is not root (the
set-gid postqueue/postdrop run by users); for root, `postfix -c DIR ...` and
`postqueue -c DIR ...` work without it and never read /etc/postfix/main.cf. Verified on
Debian 12 / Postfix 3.7 with no /etc/postfix/main.cf at all (the package installed with
"No configuration"); a system Postfix, if any, is untouched and may run beside it.
`postfix start` runs post-install create-missing itself (queue subdirectories, data
directory ownership), so no separate `check`/`set-permissions` step is needed. Nothing
runs chrooted, the tree must be searchable by the `postfix` user and uid 65534 (hence
make_tempdir() with mode 0755), and maillog_file_prefixes must admit the log path.
The queue is listed by reading the queue directories directly (queue()).

CLI (used by contrib/quickstart.sh):
    python3 -m mgtest.postfix start --dir run/postfix --port 10025 --domains localhost \
        --users root alice
    python3 -m mgtest.postfix stop --dir run/postfix
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

from . import util

POSTFIX = "/usr/sbin/postfix"
NOBODY_UID = 65534
NOBODY_GID = 65534
QUEUES = ("maildrop", "incoming", "active", "deferred", "hold", "corrupt")

MASTER_CF = """\
# master.cf for a private mailgate test instance (no chroot anywhere).
{listen} inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def milter_postfix(directory, milter_port, extra_main=None, **kw):
    """A PostfixInstance whose smtpd calls the milter on 127.0.0.1:milter_port (protocol 6)
    and tempfails mail while the milter does not answer."""
    main = {"smtpd_milters": f"inet:127.0.0.1:{milter_port}",
            "milter_default_action": "tempfail", "milter_protocol": "6"}
    main.update(extra_main or {})
    return PostfixInstance(directory, extra_main=main, **kw)


def start_all(instances, tmpdir):
    """Starts every instance; when one fails, stops them all, removes tmpdir and re-raises
    (for setUpClass, whose tearDownClass does not run then)."""
    try:
        for instance in instances:
            instance.start()
    except BaseException:
        for instance in instances:
            instance.stop()
        util.remove_tree(tmpdir)
        raise


def stop_all(instances, tmpdir):
    """Stops every instance, then removes tmpdir (kept, and named, with MAILGATE_KEEP_TMP)."""
    try:
        for instance in instances:
            instance.stop()
    finally:
        if os.environ.get("MAILGATE_KEEP_TMP"):
            print(f"kept {tmpdir}")
        else:
            util.remove_tree(tmpdir)


class PostfixError(RuntimeError):
    pass


class PostfixInstance:
    """A private Postfix on 127.0.0.1:port (port 0 → a free port is picked).

    users: addresses ("user@example.test") or bare local parts (expanded to every domain).
    extra_main: dict of additional main.cf settings (override the defaults).
    """

    def __init__(self, directory, port=0, domains=("example.test",), users=("user",),
                 hostname="backend.mailgate.test", extra_main=None):
        self.dir = os.path.abspath(directory)
        self.port = port or util.free_port()
        self.host = "127.0.0.1"
        self.domains = list(domains)
        self.users = []
        for u in users:
            if "@" in u:
                self.users.append(u)
            else:
                self.users.extend(f"{u}@{d}" for d in self.domains)
        self.hostname = hostname
        self.extra_main = dict(extra_main or {})
        self.config_dir = os.path.join(self.dir, "etc")
        self.queue_dir = os.path.join(self.dir, "queue")
        self.data_dir = os.path.join(self.dir, "data")
        self.mail_dir = os.path.join(self.dir, "mail")
        self.maillog_path = os.path.join(self.dir, "maillog")
        self.master_pid = None

    # ---------------------------------------------------------------- configuration
    def main_cf(self):
        d = self.dir
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": self.hostname,
            "mydomain": "mailgate.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "relay_domains": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_authorized_xclient_hosts": "127.0.0.0/8",
            "smtpd_authorized_xforward_hosts": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtpd_peername_lookup": "no",
            "smtputf8_enable": "yes",
            "virtual_mailbox_domains": ", ".join(self.domains),
            "virtual_mailbox_maps": f"texthash:{self.config_dir}/vmailbox",
            "virtual_mailbox_base": self.mail_dir,
            "virtual_uid_maps": f"static:{NOBODY_UID}",
            "virtual_gid_maps": f"static:{NOBODY_GID}",
            "virtual_minimum_uid": "100",
            # Nothing leaves loopback: mail not for our domains bounces locally.
            "default_transport": "error:mail for other domains is not delivered here",
            "relay_transport": "error:mail for other domains is not delivered here",
            "smtp_dns_support_level": "disabled",
            "lmtp_dns_support_level": "disabled",
            "biff": "no",
            "append_dot_mydomain": "no",
            "message_size_limit": "20480000",
            # Short timers: tests restart instances and look at the queue.
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "delay_warning_time": "0h",
            "smtpd_error_sleep_time": "0",
            "smtpd_soft_error_limit": "100",
            "smtpd_hard_error_limit": "200",
            "maillog_file": self.maillog_path,
            "maillog_file_prefixes": f"/var, /dev/stdout, {d}",
            "syslog_name": "postfix-mgtest",
        }
        settings.update(self.extra_main)
        lines = ["# main.cf for a private mailgate test instance (written by mgtest.postfix)."]
        lines += [f"{k} = {v}" for k, v in settings.items()]
        return "\n".join(lines) + "\n"

    def write_config(self):
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        for sub in (self.config_dir, self.queue_dir):
            os.makedirs(sub, exist_ok=True)
            os.chmod(sub, 0o755)
        # virtual(8) delivers as uid 65534; it creates mail/<domain>/<user>/ itself.
        os.makedirs(self.mail_dir, exist_ok=True)
        os.chown(self.mail_dir, NOBODY_UID, NOBODY_GID)
        os.chmod(self.mail_dir, 0o755)
        with open(os.path.join(self.config_dir, "main.cf"), "w") as f:
            f.write(self.main_cf())
        with open(os.path.join(self.config_dir, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(listen=f"{self.host}:{self.port}"))
        with open(os.path.join(self.config_dir, "vmailbox"), "w") as f:
            for address in self.users:
                local, domain = address.rsplit("@", 1)
                f.write(f"{address} {domain}/{local}/\n")

    # ---------------------------------------------------------------- lifecycle
    def _postfix(self, *args, timeout=60, check=True):
        env = dict(os.environ)
        env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
        env.pop("MAIL_CONFIG", None)
        proc = subprocess.run([POSTFIX, "-c", self.config_dir, *args], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise PostfixError(f"postfix {' '.join(args)} failed ({proc.returncode}):\n"
                               f"{proc.stdout}{proc.stderr}\n--- maillog:\n{self.maillog()[-3000:]}")
        return proc

    def _read_pid(self):
        try:
            with open(os.path.join(self.queue_dir, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self):
        pid = self._read_pid()
        return pid is not None and util.pid_alive(pid)

    def start(self, timeout=30):
        """Writes the config, starts master(8), waits until the port greets with 220."""
        self.write_config()
        if self.running():   # a stale instance of this directory (e.g. quickstart re-run)
            self.stop()
        self._postfix("start")
        self.master_pid = self._read_pid()
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as s:
                    s.settimeout(5)
                    greeting = s.recv(512)
                    if greeting.startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        return self
                    last = greeting
            except OSError as e:
                last = e
            time.sleep(0.1)
        self.stop()
        raise PostfixError(f"postfix on port {self.port} did not greet 220 within {timeout}s "
                           f"(last: {last!r})\n--- maillog:\n{self.maillog()[-3000:]}")

    def stop(self):
        """postfix stop, then make sure master (and its process group) is gone, by PID."""
        pid = self._read_pid() or self.master_pid
        if pid and util.pid_alive(pid):
            try:
                self._postfix("stop", timeout=30, check=False)
            except subprocess.TimeoutExpired:
                pass
            try:
                util.wait_until(lambda: not util.pid_alive(pid), 10, what="postfix master exit")
            except TimeoutError:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
                util.wait_until(lambda: not util.pid_alive(pid), 10, what="postfix master kill")
        self.master_pid = None

    def reload(self):
        self.write_config()
        self._postfix("reload")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---------------------------------------------------------------- inspection
    def maildir(self, user):
        address = user if "@" in user else f"{user}@{self.domains[0]}"
        local, domain = address.rsplit("@", 1)
        return os.path.join(self.mail_dir, domain, local)

    def messages(self, user):
        """Delivered messages of `user` (address or local part), oldest first, as bytes."""
        base = self.maildir(user)
        found = []
        for sub in ("new", "cur"):
            d = os.path.join(base, sub)
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue
            for name in names:
                path = os.path.join(d, name)
                try:
                    st = os.stat(path)
                    with open(path, "rb") as f:
                        found.append((st.st_mtime_ns, name, f.read()))
                except FileNotFoundError:
                    continue
        found.sort()
        return [data for _, _, data in found]

    def wait_for_messages(self, user, n=1, timeout=20):
        """Waits until `user` has at least n delivered messages; returns all of them."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages(user)
            if len(msgs) >= n:
                return msgs
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{user}: {len(msgs)} of {n} messages after {timeout}s\n"
                                   f"queue: {self.queue()}\n--- maillog:\n{self.maillog()[-3000:]}")
            time.sleep(0.1)

    def all_messages(self):
        """{address: [bytes, ...]} for every configured user."""
        return {u: self.messages(u) for u in self.users}

    def maillog(self):
        try:
            with open(self.maillog_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def queue(self):
        """Messages still in the queue: [(queue_name, queue_id), ...]."""
        out = []
        for q in QUEUES:
            top = os.path.join(self.queue_dir, q)
            for root, _dirs, files in os.walk(top):
                out.extend((q, f) for f in files)
        return sorted(out)

    def wait_queue_empty(self, timeout=20):
        util.wait_until(lambda: not self.queue(), timeout, what="empty postfix queue")

    def smtpd_queue_ids(self):
        """Queue ids assigned by smtpd, in log order, with the client: [(id, client)]."""
        import re
        return re.findall(r"postfix-mgtest/smtpd\[\d+\]: ([0-9A-F]+): client=(\S+)", self.maillog())


def _main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m mgtest.postfix",
                                description="Run a private Postfix instance on loopback.")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="write config and start (stops a stale instance first)")
    s.add_argument("--dir", required=True)
    s.add_argument("--port", type=int, default=10025)
    s.add_argument("--domains", nargs="+", default=["example.test"])
    s.add_argument("--users", nargs="+", default=["user"])
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra main.cf setting (repeatable)")
    t = sub.add_parser("stop", help="stop the instance in --dir")
    t.add_argument("--dir", required=True)
    st = sub.add_parser("status", help="exit 0 if the instance in --dir is running")
    st.add_argument("--dir", required=True)
    args = p.parse_args(argv)
    if args.cmd == "start":
        extra = {}
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                p.error(f"--set wants KEY=VALUE, not {item!r}")
            extra[key.strip()] = value.strip()
        inst = PostfixInstance(args.dir, port=args.port, domains=args.domains, users=args.users,
                               extra_main=extra)
        inst.start()
        print(f"postfix: running on {inst.host}:{inst.port}, master pid {inst.master_pid}, "
              f"mail in {inst.mail_dir}/<domain>/<user>/new, log {inst.maillog_path}")
        return 0
    inst = PostfixInstance(args.dir, port=1)
    if args.cmd == "stop":
        inst.stop()
        print(f"postfix: stopped instance in {inst.dir}")
        return 0
    return 0 if inst.running() else 1


if __name__ == "__main__":
    sys.exit(_main())
