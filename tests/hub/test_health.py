"""/healthz and /readyz: what a load balancer asks, answered without auth and without revealing anything."""

import json
import os
import socket
import subprocess
import sys

import dj_database_url
import pytest
from django.conf import settings
from django.db.utils import ConnectionHandler

from hub import health


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def readyz_in_fresh_process(**env: str) -> tuple[int, dict]:
    """GET /readyz in a new process whose settings come from `env`, as a deployed process's would."""
    script = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client().get('/readyz'); print(r.status_code); print(r.content.decode())"
    )
    base = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**base, "DJANGO_SETTINGS_MODULE": "hub.settings", "SECRET_KEY": "x" * 50, **env},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    status, body = result.stdout.strip().splitlines()[-2:]
    return int(status), json.loads(body)


def test_liveness_answers_without_auth_and_says_only_the_build(client, settings):
    settings.BATON_BUILD_ID = "2026.11.30-abc123"

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "build": "2026.11.30-abc123"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readiness_reports_each_check_with_its_latency(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["latency_ms"] >= 0
    assert set(body) == {"status", "build", "checks"}


@pytest.mark.django_db
def test_probes_answer_a_load_balancer_that_sends_its_own_ip_as_host(client):
    assert client.get("/healthz", HTTP_HOST="10.0.0.5:8000").status_code == 200
    assert client.get("/readyz", HTTP_HOST="10.0.0.5:8000").status_code == 200


def test_readiness_is_503_when_postgresql_is_down():
    port = closed_port()

    status, body = readyz_in_fresh_process(DATABASE_URL=f"postgres://baton@127.0.0.1:{port}/baton")

    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["detail"] == "unreachable (OperationalError)"
    # Nothing about the deployment leaks: no host, port or database name.
    assert str(port) not in json.dumps(body)
    assert "baton@" not in json.dumps(body)


def test_readiness_is_503_while_migrations_are_unapplied(tmp_path):
    status, body = readyz_in_fresh_process(
        DATABASE_URL=f"sqlite:///{tmp_path / 'empty.sqlite3'}", DEBUG="true"
    )

    assert status == 503
    assert body["checks"]["database"]["ok"] is False
    assert "unapplied migration" in body["checks"]["database"]["detail"]


def test_database_check_against_a_closed_port_fails_fast():
    handler = ConnectionHandler(
        {"default": dj_database_url.parse(f"postgres://baton@127.0.0.1:{closed_port()}/baton")}
    )

    result = health.timed("database", lambda: health.database_problem(handler))

    assert not result.ok
    assert result.latency_ms < 5000


@pytest.mark.django_db
def test_readiness_is_503_when_redis_is_set_but_down(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"

    response = client.get("/readyz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["redis"] == {
        "ok": False,
        "latency_ms": checks["redis"]["latency_ms"],
        "detail": "unreachable (ConnectionError)",
    }
