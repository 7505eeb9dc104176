"""Readiness checks for the load balancer: is the database reachable and migrated, is Redis reachable."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import ConnectionHandler

REDIS_TIMEOUT_SECONDS = 2.0
_migrated: set[str] = set()


@dataclass(frozen=True)
class CheckResult:
    """One dependency's verdict; `detail` says what is wrong in words, never a host name or version."""

    name: str
    ok: bool
    latency_ms: float
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"ok": self.ok, "latency_ms": self.latency_ms}
        if self.detail:
            body["detail"] = self.detail
        return body


def timed(name: str, check: Callable[[], str]) -> CheckResult:
    """Run `check` (returns "" when healthy, else what is wrong) and time it; an exception means down."""
    started = time.perf_counter()
    try:
        problem = check()
    except Exception as exc:
        # Only the exception's class: its text can carry a host, user or database name.
        problem = f"unreachable ({type(exc).__name__})"
    latency = round((time.perf_counter() - started) * 1000, 1)
    return CheckResult(name, not problem, latency, problem)


def database_problem(handler: ConnectionHandler | None = None, alias: str = DEFAULT_DB_ALIAS) -> str:
    """ "" when the database answers and every migration on disk is applied."""
    connection = (handler or connections)[alias]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    if alias in _migrated:
        return ""
    executor = MigrationExecutor(connection)
    unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if unapplied:
        return f"{len(unapplied)} unapplied migration(s)"
    # The migrations on disk do not change while the process runs: once all are applied, stop reading them.
    _migrated.add(alias)
    return ""


def redis_problem(url: str) -> str:
    """ "" when Redis answers a PING within a couple of seconds."""
    import redis

    client = redis.Redis.from_url(
        url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    finally:
        client.close()
    return ""


def readiness(handler: ConnectionHandler | None = None) -> list[CheckResult]:
    """Every check that applies to this deployment: the database always, Redis when REDIS_URL is set."""
    results = [timed("database", lambda: database_problem(handler))]
    if settings.REDIS_URL:
        results.append(timed("redis", lambda: redis_problem(settings.REDIS_URL)))
    return results
