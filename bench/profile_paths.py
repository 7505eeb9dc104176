"""Where the time goes, in process (no HTTP, no load generator): cProfile of the accept path, the
worker on single-event messages, and the agent timeline, on the bench database.

    DATABASE_URL=... REDIS_URL=... SECRET_KEY=x .venv/bin/python bench/profile_paths.py [--requests 2000]

Prints milliseconds per request (or per event) and the functions that take the most of it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import setup_django

setup_django()

from django.test import Client  # noqa: E402

from bench.ingest import event, prepare  # noqa: E402
from bench.load_events import reference_for  # noqa: E402
from bench.read import staff_token  # noqa: E402
from hub.celery import app as celery_app  # noqa: E402
from partners import services  # noqa: E402
from partners.models import InboundMessage  # noqa: E402


def profiled(label: str, count: int, work) -> None:
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    work()
    profile.disable()
    elapsed = time.perf_counter() - started
    print(f"\n== {label}: {elapsed / count * 1000:.2f} ms each ({count} in {elapsed:.1f} s)")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(28)
    print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50, help="messages per worker task")
    args = parser.parse_args()
    celery_app.conf.task_always_eager = False  # as in production: the relay publishes, not the request

    partner, key, references, run = prepare(args.requests)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    bodies = [json.dumps(event(references[i], f"{run}-p{i}", i)) for i in range(args.requests)]
    for body in bodies[:50]:  # warm up: caches, connections
        client.post("/api/partner/v1/events", body, content_type="application/json")

    def accept() -> None:
        for body in bodies[50:]:
            response = client.post("/api/partner/v1/events", body, content_type="application/json")
            assert response.status_code == 202, response.content

    profiled("accept one event (request path)", args.requests - 50, accept)

    ids = list(
        InboundMessage.objects.filter(partner=partner, state=InboundMessage.State.RECEIVED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )

    def work() -> None:
        for start in range(0, len(ids), args.batch):
            services.process_inbound_batch(ids[start : start + args.batch])

    profiled(f"worker, single-event messages in batches of {args.batch}", len(ids), work)

    agent = Client(HTTP_AUTHORIZATION=f"Token {staff_token()}")
    rng = random.Random(7)
    paths = [f"/api/v1/shipments/{reference_for(rng.randint(1, 1_000_000))}/timeline" for _ in range(300)]

    def timelines() -> None:
        for path in paths:
            assert agent.get(path).status_code == 200

    profiled("agent timeline", len(paths), timelines)


if __name__ == "__main__":
    main()
