import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from hub.celery import app as celery_app
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory, give_role
from tests.log_scan import log_scan  # noqa: F401  (scans every log line of the run for secrets)

CLOCK_AHEAD_ENV = "BATON_TEST_CLOCK_AHEAD_DAYS"


def pytest_addoption(parser):
    parser.addoption(
        "--clock-ahead-days",
        type=int,
        default=int(os.environ.get(CLOCK_AHEAD_ENV) or 0),
        help=(
            "Run the whole session with the clock moved this many days ahead (also "
            f"{CLOCK_AHEAD_ENV}): a test that compares a literal date with now fails. Tests that "
            "travel in time themselves still do; they come back to the moved clock."
        ),
    )


def pytest_configure(config):
    # Before collection, so module-level "now"s move too. Ticking, as real time does.
    days = config.getoption("--clock-ahead-days")
    if days:
        config.baton_clock = time_machine.travel(datetime.now(UTC) + timedelta(days=days), tick=True)
        config.baton_clock.start()


def pytest_unconfigure(config):
    clock = getattr(config, "baton_clock", None)
    if clock is not None:
        clock.stop()


def pytest_report_header(config):
    days = config.getoption("--clock-ahead-days")
    return [f"clock moved {days} days ahead: now is {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"] if days else []


def pytest_collection_modifyitems(config, items):
    """Live tests need PostgreSQL, Redis and a worker: skip them in the default (SQLite) run.

    When they do run, they run last: their worker and relay outlive a test (they are shared), and
    the relay picks up any stored message it finds, so a later in-process test would see its
    messages processed twice.
    """
    if os.environ.get("REDIS_URL") and os.environ.get("DATABASE_URL", "").startswith("postgres"):
        items[:] = [i for i in items if "live" not in i.keywords] + [i for i in items if "live" in i.keywords]
        return
    skip = pytest.mark.skip(reason="live: set DATABASE_URL (PostgreSQL) and REDIS_URL")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def celery_mode(request):
    """Tests run tasks in-process unless they use the live worker."""
    live = "live" in request.keywords
    celery_app.conf.task_always_eager = not live
    celery_app.conf.task_eager_propagates = not live


@pytest.fixture(autouse=True)
def fresh_webhook_endpoint_cache():
    """Endpoints cached by one test must not leak into the next (transactional tests reuse ids)."""
    from tracking import models

    models._endpoint_cache.clear()


@pytest.fixture
def partner(db):
    return PartnerFactory(slug="swift-couriers", name="Swift Couriers")


@pytest.fixture
def shipment(db):
    return ShipmentFactory(reference="ORD-1001")


@pytest.fixture
def custody(partner, shipment):
    return CustodyFactory(partner=partner, shipment=shipment, partner_reference="SWIFT-77")


@pytest.fixture
def partner_client() -> Callable[..., APIClient]:
    def make(partner) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {partner.api_key}")
        return client

    return make


@pytest.fixture
def agent_client(db, django_user_model) -> APIClient:
    user = django_user_model.objects.create_user("agent", "agent@example.com", "pw", is_staff=True)
    give_role(user, "agent")
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def operations_user(db, django_user_model):
    from django.contrib.auth.models import Group, Permission

    # The group comes from a data migration; transactional tests flush it, so make sure it is there.
    group, _ = Group.objects.get_or_create(name="operations")
    group.permissions.add(Permission.objects.get(content_type__app_label="contactcentre", codename="operate"))
    user = django_user_model.objects.create_user("ops", "ops@example.com", "pw")
    user.groups.add(group)
    return user


@pytest.fixture
def operations_client(operations_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(operations_user)
    return client


def wait_for(condition: Callable[[], object], *, timeout: float = 30.0, interval: float = 0.1):
    """Poll until `condition()` is truthy (live tests wait on a real worker)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def live_database_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Worker:
    """A real `celery worker` process on the test database; `kill()` and `start()` for fault tests.

    `redis_url` points it at a Redis of the test's own (a fault test that stops it); `env` adds settings.
    """

    started: list["Worker"] = []  # running workers, the latest last: its relay is the one running

    def __init__(
        self, *, redis_url: str | None = None, env: dict[str, str] | None = None, log_path: str | None = None
    ) -> None:
        # A queue of its own: a worker left over from another run on the same Redis cannot steal tasks.
        self.queue = f"baton-test-{uuid.uuid4().hex[:10]}"
        self.redis_url = redis_url
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        os.makedirs(os.path.join(settings.BASE_DIR, "var"), exist_ok=True)
        self.log_path = log_path or os.path.join(settings.BASE_DIR, "var", "live-worker.log")
        self.log = open(self.log_path, "ab")  # noqa: SIM115
        self.relay: subprocess.Popen[bytes] | None = None
        self.relay_env: dict[str, str] = {}

    def control_app(self):
        if self.redis_url is None:
            return celery_app
        from celery import Celery

        # Not the current app: shared tasks elsewhere in the run must keep resolving to Baton's.
        return Celery("baton-test-control", broker=self.redis_url, set_as_current=False)

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": live_database_url(),
            "BATON_SWEEP_SECONDS": "2",
            "CELERY_QUEUE": self.queue,
            "SECRET_KEY": "live-test-" + uuid.uuid4().hex * 2,  # production refuses a short key
            **({"REDIS_URL": self.redis_url} if self.redis_url else {}),
            **self.env,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "hub",
                "worker",
                "-B",
                "-l",
                "INFO",
                "-c",
                "2",
                "--without-gossip",
                "--without-mingle",
                "-Q",
                self.queue,
                "-n",
                f"{self.queue}@%h",
                "-s",
                os.path.join(settings.BASE_DIR, "var", f"beat-schedule-{self.queue}"),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=settings.BASE_DIR,
            start_new_session=True,  # its own process group: kill() reaches its pool and beat, nothing else
        )
        # Production runs one `manage.py relay` beside the workers: it publishes what ingest stored
        # to their queue. Here the worker started last is the one the tests talk to, so its relay
        # is the only one running (another relay would hand the messages to another worker).
        if self in Worker.started:
            Worker.started.remove(self)
        for other in Worker.started:
            other.stop_relay()
        Worker.started.append(self)
        self.relay_env = env
        self.start_relay()
        control = self.control_app()
        ready = wait_for(
            lambda: (
                self.process.poll() is not None
                or control.control.ping(timeout=0.5, destination=[f"{self.queue}@{socket.gethostname()}"])
            ),
            timeout=60,
        )
        assert self.process.poll() is None, "the Celery worker exited at start (see var/live-worker.log)"
        assert ready, "the Celery worker did not answer a ping within 60 s"

    def kill(self) -> None:
        """SIGKILL the worker with its pool processes and embedded beat (and no other engineer's worker)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.stop_relay()
        if self in Worker.started:
            Worker.started.remove(self)
            if Worker.started:
                Worker.started[-1].start_relay()

    def start_relay(self) -> None:
        if self.relay is None or self.relay.poll() is not None:
            self.relay = subprocess.Popen(
                [sys.executable, "manage.py", "relay"],
                env=self.relay_env,
                stdout=self.log,
                stderr=subprocess.STDOUT,
                cwd=settings.BASE_DIR,
                start_new_session=True,
            )

    def stop_relay(self) -> None:
        if self.relay and self.relay.poll() is None:
            self.relay.terminate()
            self.relay.wait(timeout=20)
        self.relay = None


@pytest.fixture(scope="session")
def live_worker(django_db_setup, django_db_blocker) -> Iterator[Worker]:
    assert connection.vendor == "postgresql", "live tests run against PostgreSQL"
    os.makedirs(os.path.join(settings.BASE_DIR, "var"), exist_ok=True)
    worker = Worker()
    default_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = worker.queue
    worker.start()
    yield worker
    worker.stop()
    celery_app.conf.task_default_queue = default_queue


class RedisServer:
    """A redis-server of the test's own on a free port (never the machine's shared one), nothing on disk."""

    def __init__(self, directory: str) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
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
                self.directory,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert wait_for(self.answers, timeout=10), "redis-server did not start"

    def answers(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock,
        ):
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False

    def stop(self) -> None:
        """Stop it as a crash would: SIGKILL, the queue and every unacknowledged task gone with it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class WebServer:
    """The Django app under gunicorn in its own process, on the test database and the given Redis."""

    def __init__(self, *, redis_url: str, queue: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.redis_url = redis_url
        self.queue = queue
        self.extra_env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        os.makedirs(os.path.join(settings.BASE_DIR, "var"), exist_ok=True)
        self.log = open(os.path.join(settings.BASE_DIR, "var", "live-web.log"), "ab")  # noqa: SIM115

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        import requests

        env = {
            **os.environ,
            "DATABASE_URL": live_database_url(),
            "REDIS_URL": self.redis_url,
            "CELERY_QUEUE": self.queue,
            "SECRET_KEY": "live-test-" + uuid.uuid4().hex * 2,
            "DEBUG": "false",
            **self.extra_env,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "hub.wsgi",
                "-b",
                f"127.0.0.1:{self.port}",
                "-w",
                "2",
                "--timeout",
                "60",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=settings.BASE_DIR,
            start_new_session=True,
        )

        def up() -> bool:
            with contextlib.suppress(requests.RequestException):
                return requests.get(f"{self.url}/api/partner/v1/uploads/template.csv", timeout=1).ok
            return False

        assert wait_for(up, timeout=30), "gunicorn did not answer within 30 s"

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def second_connection() -> Iterator[object]:
    """Another PostgreSQL session on the test database, in autocommit, to hold a lock the code meets."""
    import psycopg

    database = connection.settings_dict
    other = psycopg.connect(
        dbname=database["NAME"],
        user=database["USER"],
        host=database["HOST"],
        port=database["PORT"] or 5432,
        autocommit=True,
    )
    yield other
    other.close()
