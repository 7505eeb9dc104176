"""What the bench scripts share: Django set-up, a small HTTP load generator, percentiles, budgets."""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def setup_django() -> None:
    """Configure Django with the bench settings (the production settings plus the control endpoint)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()


def machine() -> str:
    cpus = os.cpu_count()
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = 0.0
    return f"{platform.node()}: {cpus} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[rank]


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def save(name: str, text: str, data: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"{name}-{stamp}.txt").write_text(text)
    (RESULTS / f"{name}-{stamp}.json").write_text(json.dumps(data, indent=2, default=str))


# --- the load generator ---------------------------------------------------------------------------
#
# A deliberately small HTTP/1.1 client on asyncio: requests are pre-built bytes on keep-alive
# connections, so the generator spends far less CPU per request than `requests` would on a machine
# it shares with the server. In `rate` mode it is open-loop: each request has a scheduled start
# and latency counts from that schedule, so a slow server cannot hide its queueing (no coordinated
# omission).


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)  # seconds, of 2xx responses
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    started: float = 0.0
    finished: float = 0.0
    accepted_at: list[tuple[float, bytes]] = field(default_factory=list)  # (wall time, body) of sampled 2xx

    @property
    def ok(self) -> int:
        return sum(n for code, n in self.statuses.items() if 200 <= code < 300)

    @property
    def seconds(self) -> float:
        return max(self.finished - self.started, 1e-9)


def build_request(url: str, method: str, body: bytes, headers: dict[str, str]) -> bytes:
    parts = urlsplit(url)
    lines = [f"{method} {parts.path}{'?' + parts.query if parts.query else ''} HTTP/1.1"]
    lines.append(f"Host: {parts.netloc}")
    for name, value in headers.items():
        lines.append(f"{name}: {value}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    header_lines = head.decode("latin-1").split("\r\n")
    code = int(header_lines[0].split(" ", 2)[1])
    length, close = 0, False
    for line in header_lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    body = await reader.readexactly(length) if length else b""
    return code, close, body


async def _run(
    url: str,
    make: Callable[[int], bytes],
    *,
    connections: int,
    duration: float,
    rate: float | None,
    sample_every: int,
) -> Outcome:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    outcome = Outcome()
    counter = iter(range(10**12))
    outcome.started = start = time.perf_counter()
    deadline = start + duration

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(host, port)

    async def worker() -> None:
        reader, writer = await connect()
        while True:
            n = next(counter)
            if rate:
                scheduled = start + n / rate
                # A server that cannot keep up does not stretch the phase: what is not sent by the
                # deadline was not served, and the achieved rate shows it.
                if scheduled >= deadline or time.perf_counter() >= deadline:
                    break
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                scheduled = time.perf_counter()
                if scheduled >= deadline:
                    break
            request = make(n)
            try:
                writer.write(request)
                code, close, body = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                outcome.errors += 1
                writer.close()
                reader, writer = await connect()
                continue
            now = time.perf_counter()
            outcome.statuses[code] = outcome.statuses.get(code, 0) + 1
            if 200 <= code < 300:
                outcome.latencies.append(now - scheduled)
                if sample_every and n % sample_every == 0:
                    outcome.accepted_at.append((time.time(), body))
            if close:
                writer.close()
                reader, writer = await connect()
        writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    outcome.finished = time.perf_counter()
    return outcome


def run_load(
    url: str,
    make: Callable[[int], bytes],
    *,
    connections: int,
    duration: float,
    rate: float | None = None,
    sample_every: int = 0,
) -> Outcome:
    """Send the bytes `make(n)` for `duration` seconds, closed loop or at a fixed `rate` per second."""
    return asyncio.run(
        _run(url, make, connections=connections, duration=duration, rate=rate, sample_every=sample_every)
    )


def describe(outcome: Outcome, *, per_request: int = 1) -> dict[str, float]:
    lat = outcome.latencies
    return {
        "requests_ok": outcome.ok,
        "requests_per_s": outcome.ok / outcome.seconds,
        "events_per_s": outcome.ok * per_request / outcome.seconds,
        "p50_ms": percentile(lat, 50) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "max_ms": max(lat, default=0.0) * 1000,
        "non_2xx": sum(n for code, n in outcome.statuses.items() if not 200 <= code < 300),
        "errors": outcome.errors,
    }
