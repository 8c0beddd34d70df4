"""A real PostgreSQL server for tests and benchmarks: Debian's ``postgresql`` package,
started with ``initdb``/``pg_ctl`` on 127.0.0.1 and a free port, stopped after.

PostgreSQL refuses to run as root, and CI runs as root: the server then runs as an
unprivileged system user (``kernelflow-pg``, created with ``useradd`` if missing),
in a temporary directory it owns. ``make test`` installs the package when its
binaries are missing. Anything that stops the server from starting is raised
with the reason (and the server's log), never skipped.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

USER = "kernelflow"  # the server's superuser, with a password: auth is scram on TCP
PASSWORD = "s3cret-pw"
SYSTEM_USER = "kernelflow-pg"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL could not be installed or started; the message says why."""


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    data: Path

    def url(self, database: str = "postgres", *, password: str = PASSWORD, **query: str) -> str:
        tail = f"?{urllib.parse.urlencode(query)}" if query else ""
        return f"postgresql://{USER}:{password}@{self.host}:{self.port}/{database}{tail}"


def binaries() -> Path:
    """The newest installed PostgreSQL's bin directory."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version)
    if not found:
        raise PostgresUnavailable(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl): "
            "`make test` installs Debian's postgresql package; or run "
            "`apt-get install -y postgresql`"
        )
    return Path(found[-1]).parent


def _version(path: str) -> int:
    return int(Path(path).parent.parent.name.split(".")[0])


@contextlib.contextmanager
def running(*, fsync: bool = False) -> Iterator[Server]:
    """A fresh server for the duration of the block; ``fsync=False`` for tests only."""
    bin_dir = binaries()
    uid, gid = _unprivileged()
    root = Path(tempfile.mkdtemp(prefix="kf-pg-"))
    try:
        os.chown(root, uid, gid)
        root.chmod(0o700)
        server = Server("127.0.0.1", _free_port(), root / "data")
        pwfile = root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        os.chown(pwfile, uid, gid)
        _as(uid, gid, [
            bin_dir / "initdb", "-D", server.data, "-U", USER, f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync",
        ])  # fmt: skip
        options = f"-c listen_addresses={server.host} -p {server.port} -k {root}"
        options += "" if fsync else " -c fsync=off -c synchronous_commit=off"
        _as(uid, gid, [
            bin_dir / "pg_ctl", "-D", server.data, "-l", root / "log", "-o", options,
            "-w", "-t", "60", "start",
        ], log=root / "log")  # fmt: skip
        try:
            yield server
        finally:
            _as(uid, gid, [bin_dir / "pg_ctl", "-D", server.data, "-m", "fast", "-w", "stop"])
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _unprivileged() -> tuple[int | None, int | None]:
    """The user the server runs as: this one, or (as root) a system user made for it."""
    if os.geteuid() != 0:
        return None, None
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        made = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             SYSTEM_USER],
            capture_output=True, text=True,
        )  # fmt: skip
        if made.returncode not in (0, 9):  # 9: made meanwhile by another process
            raise PostgresUnavailable(
                f"cannot create the user {SYSTEM_USER} to run PostgreSQL as: {made.stderr}"
            ) from None
        entry = pwd.getpwnam(SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _as(uid: int | None, gid: int | None, command: list, log: Path | None = None) -> None:
    done = subprocess.run(
        [str(part) for part in command],
        user=uid, group=gid, extra_groups=[] if uid is not None else None,
        capture_output=True, text=True, cwd="/",
    )  # fmt: skip
    if done.returncode != 0:
        server_log = log.read_text() if log is not None and log.exists() else ""
        raise PostgresUnavailable(
            f"{Path(str(command[0])).name} failed ({done.returncode}): "
            f"{done.stderr or done.stdout}{server_log}"
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def create_database(server: Server, name: str) -> str:
    """A new empty database on ``server``; its URL."""
    import psycopg

    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.url(name)


def drop_database(server: Server, name: str) -> None:
    import psycopg

    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
