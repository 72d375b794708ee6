"""Services a fault test starts, breaks and stops itself: its own PostgreSQL
cluster, Redis server, Celery worker and beat, and gunicorn. Nothing here
touches the shared cluster or Redis of the production-stack stage; every
process is stopped by its own pid, with bounded waits."""

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_VERSION = "15"
SUPERUSER, APP_ROLE = "faults", "faults_app"


def unavailable_reason() -> str | None:
    """Why the fault suite cannot run here, or None."""
    if os.geteuid() != 0:
        return "the fault suite needs root (PostgreSQL clusters, tmpfs mounts)"
    for tool in ("pg_createcluster", "pg_ctlcluster", "redis-server"):
        if shutil.which(tool) is None:
            return f"the fault suite needs {tool}"
    if not (BIN / "celery").exists() or not (BIN / "gunicorn").exists():
        return "the fault suite needs celery and gunicorn in the virtualenv"
    return None


def require_stack() -> None:
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("REQUIRE_PRODUCTION_STACK") == "1":
        pytest.fail(f"{reason} and REQUIRE_PRODUCTION_STACK=1")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.1):
    """Poll ``predicate`` until it returns a true value (returned); fail after
    ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def run(command: list[str], *, timeout: float = 60, env=None, check=True):
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


class PostgresCluster:
    """A PostgreSQL cluster of the suite's own (pg_createcluster), with a
    superuser that migrates and an application role that owns nothing."""

    def __init__(self, name: str):
        self.name = name
        self.port = free_port()

    def create(self) -> None:
        run(
            [
                "pg_createcluster",
                PG_VERSION,
                self.name,
                "--port",
                str(self.port),
                # Durability is not under test; speed is.
                "-o",
                "fsync=off",
                "-o",
                "synchronous_commit=off",
                "-o",
                "full_page_writes=off",
            ]
        )
        self.start()
        self.psql(
            f"CREATE ROLE {SUPERUSER} LOGIN SUPERUSER PASSWORD '{SUPERUSER}';"
            f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_ROLE}';"
        )

    def start(self) -> None:
        run(["pg_ctlcluster", PG_VERSION, self.name, "start"], timeout=60)
        self.wait_ready()

    def restart(self) -> None:
        run(["pg_ctlcluster", PG_VERSION, self.name, "restart"], timeout=60)
        self.wait_ready()

    def wait_ready(self) -> None:
        wait_until(
            lambda: (
                run(
                    ["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                    check=False,
                ).returncode
                == 0
            ),
            timeout=30,
            what=f"PostgreSQL cluster {self.name}",
        )

    def drop(self) -> None:
        run(
            ["pg_dropcluster", "--stop", PG_VERSION, self.name], timeout=60, check=False
        )

    def psql(self, sql: str, database: str = "postgres") -> str:
        return run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                "psql",
                "-X",
                "-q",
                "-tA",
                "-v",
                "ON_ERROR_STOP=1",
                "-p",
                str(self.port),
                "-d",
                database,
                "-c",
                sql,
            ]
        ).stdout.strip()

    def create_database(self, name: str, *, template: str | None = None) -> None:
        clause = f" TEMPLATE {template}" if template else ""
        self.psql(f"CREATE DATABASE {name} OWNER {SUPERUSER}{clause}")
        if template is None:
            self.psql("CREATE EXTENSION postgis; CREATE EXTENSION btree_gist;", name)

    def drop_database(self, name: str) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def url(self, database: str, *, role: str = SUPERUSER) -> str:
        return f"postgis://{role}:{role}@127.0.0.1:{self.port}/{database}"


class Process:
    """A child process with its output in a log file, stopped by its pid."""

    def __init__(self, name: str, command: list[str], *, env: dict, log_dir: Path):
        self.name, self.command, self.env = name, command, env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self) -> "Process":
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its children can be found and stopped
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        # Whatever it left behind in its own session (pool children of a
        # main process killed with -9): by the session id we gave it.
        _kill_session(self.pid)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""


def _kill_session(session_id: int) -> None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) == session_id:
                os.kill(int(entry.name), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue


class Redis(Process):
    def __init__(self, log_dir: Path):
        self.port = free_port()
        super().__init__(
            f"redis-{self.port}",
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(log_dir),
            ],
            env=dict(os.environ),
            log_dir=log_dir,
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "Redis":
        super().start()
        wait_until(self.answers, timeout=10, what="redis-server")
        return self

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def signing_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


class Stack:
    """One test's registry: a database in the suite's cluster, a Redis, media,
    and the processes the test starts, all stopped at the end."""

    def __init__(self, cluster: PostgresCluster, database: str, tmp_path: Path):
        self.cluster, self.database = cluster, database
        self.dir = tmp_path
        self.media = tmp_path / "media"
        self.media.mkdir(exist_ok=True)
        self.redis: Redis | None = None
        self.processes: list[Process] = []
        self.key = signing_key()
        self.extra_env: dict[str, str] = {}

    def env(self, *, role: str = APP_ROLE, production: bool = True, **extra) -> dict:
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DATABASE_", "REDIS_", "DJANGO_", "TEST_"))
        }
        environment.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings.production"
                if production
                else "config.settings.local",
                "DEBUG": "false",
                "SECRET_KEY": "faults-" + "k" * 50,
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "SECURE_SSL_REDIRECT": "false",
                "SECURE_HSTS_SECONDS": "0",
                "LEDGER_SIGNING_KEY": self.key,
                "DATABASE_URL": self.cluster.url(self.database, role=role),
                "MEDIA_ROOT": str(self.media),
                "REGISTRY_VAR_DIR": str(self.dir),
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.redis is not None:
            environment["REDIS_URL"] = self.redis.url
        environment.update(self.extra_env)
        environment.update({key: str(value) for key, value in extra.items()})
        return environment

    def start_redis(self) -> Redis:
        self.redis = Redis(self.dir).start()
        self.processes.append(self.redis)
        return self.redis

    def spawn(self, name: str, command: list[str], **env) -> Process:
        process = Process(name, command, env=self.env(**env), log_dir=self.dir)
        self.processes.append(process.start())
        return process

    def worker(self, name: str = "worker", *, paced: bool = False, **env) -> Process:
        """A Celery worker; ``paced``: one whose land-use measurement pauses
        after each chunk (tests/faults/paced_worker.py), to be killed mid-run."""
        start = (
            [sys.executable, "-m", "tests.faults.paced_worker"]
            if paced
            else [str(BIN / "celery"), "-A", "config", "worker"]
        )
        return self.spawn(
            name,
            [
                *start,
                "--pool",
                "prefork",
                "--concurrency",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "info",
                "--hostname",
                f"{name}-{os.getpid()}@%h",
            ],
            **env,
        )

    def beat(self, **env) -> Process:
        return self.spawn(
            "beat",
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "beat",
                "--loglevel",
                "info",
                "--schedule",
                str(self.dir / "beat-schedule"),
            ],
            **env,
        )

    def web(self, *, workers: int = 2, threads: int = 4, **env) -> "Web":
        port = free_port()
        process = self.spawn(
            "web",
            [
                str(BIN / "gunicorn"),
                "config.wsgi",
                "-b",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--timeout",
                "60",
                "--no-control-socket",
            ],
            **env,
        )
        web = Web(f"http://127.0.0.1:{port}", process)
        wait_until(web.up, timeout=30, what="gunicorn")
        return web

    def django(self, function: str, *, production: bool = False, **kwargs):
        """Run ``tests.faults.scenario.<function>(**kwargs)`` in a Django
        process on this stack's database (as its owner); its JSON answer."""
        result = run(
            [
                sys.executable,
                "-m",
                "tests.faults.scenario",
                function,
                json.dumps(kwargs),
            ],
            env=self.env(role=SUPERUSER, production=production),
            timeout=120,
        )
        return json.loads(result.stdout.strip().splitlines()[-1])

    def manage(self, *args: str, timeout: float = 120, check=True, **env):
        return run(
            [sys.executable, "manage.py", *args],
            env=self.env(role=SUPERUSER, production=False, **env),
            timeout=timeout,
            check=check,
        )

    def verify_ledger(self) -> str:
        result = self.manage("verify_ledger", check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def stop(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(Exception):  # keep stopping the others
                process.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log()}" for p in self.processes)


class Web:
    def __init__(self, base: str, process: Process):
        self.base, self.process = base, process

    def up(self) -> bool:
        try:
            requests.get(self.base + "/healthz", timeout=2)
            return True
        except requests.RequestException:
            return False

    def session(self, token: str | None = None) -> requests.Session:
        session = requests.Session()
        if token:
            session.headers["Authorization"] = f"Token {token}"
        return session
