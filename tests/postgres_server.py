"""A throw-away PostgreSQL server for the test run: a fresh cluster in a temp dir, listening on 127.0.0.1 at a
free port, fsync on, password authentication over TCP; stopped and deleted when the run ends.

Fixtures (imported by conftest.py):
- `postgres_server`: the session's server. Missing binaries FAIL the tests that need it (CI must not skip them
  silently; toolchain/bootstrap.sh installs Debian's `postgresql`); `PB_SKIP_POSTGRES=1` skips them on purpose.
- `postgres_url`: an SQLAlchemy URL (`postgresql+psycopg://…`) of a new, empty database on that server.
- `store_url`: parametrized over both backends — an empty SQLite file, then an empty PostgreSQL database.

As root (initdb refuses root) the server runs as the `postgres` user, or `nobody` where there is none.
`PB_POSTGRES_BIN` names a directory holding initdb and pg_ctl if they are somewhere unusual.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SKIP_ENV = "PB_SKIP_POSTGRES"
BIN_ENV = "PB_POSTGRES_BIN"
SUPERUSER = "pbtest"
_database_numbers = itertools.count(1)


def find_bin_dir() -> Path | None:
    """The directory holding initdb and pg_ctl: $PB_POSTGRES_BIN, Debian's newest version, or PATH."""
    candidates = [os.environ.get(BIN_ENV, "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name),
                         reverse=True)
    which = shutil.which("initdb")
    candidates.append(str(Path(which).resolve().parent) if which else "")
    for candidate in filter(None, candidates):
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    bin_dir: Path
    base_dir: Path
    run_as: str | None  # the unprivileged user the server runs as, when the tests run as root
    password: str
    port: int = 0

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "server.log"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "LC_ALL": "C", "PGTZ": "UTC"}, check=False)

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            log = self.log_file.read_text(errors="replace")[-3000:] if self.log_file.exists() else ""
            raise RuntimeError(f"PostgreSQL {what} failed ({result.returncode}): {result.stderr.strip()}\n{log}")

    def init(self) -> None:
        password_file = self.base_dir / "password"
        password_file.write_text(self.password)
        self._own(password_file)
        self._check(self._run("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, f"--pwfile={password_file}",
                              "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-locale"),
                    "initdb")
        password_file.unlink()
        settings = {"listen_addresses": "'127.0.0.1'", "unix_socket_directories": f"'{self.base_dir}'",
                    "fsync": "on", "synchronous_commit": "on", "max_connections": "100", "shared_buffers": "32MB"}
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# protocolbanks test server\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def start(self) -> None:
        last: RuntimeError | None = None
        for _ in range(3):  # a free port can be taken between choosing it and binding it
            self.port = _free_port()
            result = self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60",
                               "-o", f"-p {self.port}", "start")
            try:
                self._check(result, "start")
                return
            except RuntimeError as exc:
                last = exc
        assert last is not None
        raise last

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def _own(self, path: Path) -> None:
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"pb_test_{next(_database_numbers)}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, password=self.password,
                             dbname="postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _unprivileged_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"PostgreSQL tests skipped on purpose ({SKIP_ENV}=1)")
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found in $PB_POSTGRES_BIN, "
                    "/usr/lib/postgresql/*/bin or PATH: run toolchain/bootstrap.sh (installs Debian's "
                    f"'postgresql'), or set {SKIP_ENV}=1 to skip the PostgreSQL tests on purpose", pytrace=False)
    server = PostgresServer(bin_dir, Path(tempfile.mkdtemp(prefix="pb-pg-")), _unprivileged_user(),
                            secrets.token_hex(16))
    try:
        server._own(server.base_dir)
        server.init()
        server.start()
    except BaseException:
        shutil.rmtree(server.base_dir, ignore_errors=True)
        raise
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.base_dir, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'relayer.db'}"
    return str(request.getfixturevalue("postgres_url"))
