"""A real IMAP server for the tests: Debian's Dovecot, started unprivileged in a folder of its own.

Each instance has its own configuration, port, password files (plain-text login) and maildir
under a temporary folder, and runs in the foreground as a child of the test process; nothing of
the machine's own mail service is used. Run by root (as in CI containers), it runs as the
unprivileged `dovecot` user that Debian's package creates, because Dovecot refuses to serve
mail as root.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DOVECOT = Path("/usr/sbin/dovecot")

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = {uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


@dataclass
class ImapServer:
    host: str
    port: int
    root: Path
    process: subprocess.Popen

    def add_user(self, username: str, password: str) -> None:
        # One password file per user: Dovecot rereads a changed file only when its time stamp
        # moves, which two users added within a second would not do.
        (self.root / "users" / username).write_text(f"{username}:{{PLAIN}}{password}\n")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        paths = [self.root / "startup.log", self.root / "dovecot.log"]
        return "".join(path.read_text() for path in paths if path.exists())


def start(port: int) -> ImapServer:
    """Start Dovecot on 127.0.0.1:`port` in a new temporary folder; waits until it answers.

    The folder is made here, not under pytest's own (which only root may enter), and removed by
    `stop`.
    """
    account = pwd.getpwnam("dovecot") if os.getuid() == 0 else pwd.getpwuid(os.getuid())
    root = Path(tempfile.mkdtemp(prefix="tollgate-imap-"))
    for folder in ("run", "state", "home", "users"):
        (root / folder).mkdir(exist_ok=True)
    (root / "dovecot.conf").write_text(
        CONFIG.format(
            root=root,
            port=port,
            user=account.pw_name,
            group=_group_name(account.pw_gid),
            uid=account.pw_uid,
            gid=account.pw_gid,
        )
    )
    if os.getuid() == 0:
        for path in [root, *root.rglob("*")]:
            shutil.chown(path, account.pw_uid, account.pw_gid)
    as_user = {"user": account.pw_uid, "group": account.pw_gid} if os.getuid() == 0 else {}
    process = subprocess.Popen(
        [str(DOVECOT), "-F", "-c", str(root / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=(root / "startup.log").open("wb"),
        **as_user,
    )
    server = ImapServer("127.0.0.1", port, root, process)
    _wait_for(server)
    return server


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


def _wait_for(server: ImapServer) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"Dovecot exited at start:\n{server.log()}")
        try:
            with socket.create_connection((server.host, server.port), timeout=1) as connection:
                if connection.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"Dovecot did not answer on port {server.port}:\n{server.log()}")
