"""Partner ingest over HTTP on the running stack, beside the control endpoint, against the budgets.

    bench/run_all.sh ingest          # starts gunicorn + a Celery worker on the bench database
    # or, with the stack already up at --url:
    DATABASE_URL=... REDIS_URL=... SECRET_KEY=... .venv/bin/python bench/ingest.py --url http://127.0.0.1:8765

Phases (each Baton phase waits for the worker to drain before the next, so they do not overlap):
  control/max    the control endpoint (verify the key, insert one row), closed loop
  single/max     one event per request, closed loop: the most the stack accepts
  control/rate   the control endpoint at the budget rate (800/s), open loop
  single/rate    one event per request at the budget rate, open loop: latency at that rate
  batch/max      500 events per request, closed loop
Lag is acceptance (the client got its 202) to the message's events being on the timeline
(`processed_at`, stamped after the events commit), for every 10th request.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import describe, machine, percentile, run_load, save, setup_django, verdict

setup_django()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from hub.celery import app as celery_app  # noqa: E402
from partners.models import Custody, InboundMessage, Partner  # noqa: E402
from tracking.models import Shipment, TrackingEvent  # noqa: E402

BUDGET_SINGLE_RATE = 800.0
BUDGET_SINGLE_P99_MS = 50.0
BUDGET_BATCH_RATE = 10_000.0
BATCH = 500


def prepare(shipments: int) -> tuple[Partner, str, list[str], str]:
    """A partner with a fresh key and `shipments` fresh jobs it holds (fresh, so timelines start empty)."""
    run = uuid.uuid4().hex[:6]
    partner = Partner.objects.filter(slug="bench-ingest").first() or Partner(
        slug="bench-ingest", name="Bench Ingest", kind=Partner.Kind.SUBCONTRACTOR, adapter="native"
    )
    key = partner.rotate_api_key()
    partner.rate_limit_per_minute = 100_000_000  # measure the throttle's cost, not its limit
    partner.save()
    # An interrupted earlier run may have left messages waiting: they are not this run's to process.
    InboundMessage.objects.filter(partner=partner, state=InboundMessage.State.RECEIVED).update(
        state=InboundMessage.State.REJECTED, error="bench: left over from an earlier run"
    )
    now = timezone.now()
    rows = []
    for i in range(shipments):
        shipment = Shipment(
            reference=f"ING-{run}-{i}",
            customer_name="Bench",
            address="1 Bench Road",
            postcode="N1 0PQ",
            latitude=51.53,
            longitude=-0.10,
        )
        shipment.issue_tracking_token()
        rows.append(shipment)
    created = Shipment.objects.bulk_create(rows, batch_size=1000)
    Custody.objects.bulk_create(
        [
            Custody(
                partner=partner,
                shipment=s,
                partner_reference=f"J-{run}-{i}",
                started_at=now - timedelta(hours=1),
            )
            for i, s in enumerate(created)
        ],
        batch_size=1000,
    )
    with connection.cursor() as cursor:
        # As autovacuum would before long: with no statistics for a partner this new, PostgreSQL
        # reads all of its custody rows through the plain partner index on every lookup.
        cursor.execute("ANALYZE partners_custody")
        cursor.execute("ANALYZE tracking_shipment")
    return partner, key, [f"J-{run}-{i}" for i in range(shipments)], run


def event(reference: str, event_id: str, n: int) -> dict:
    moment = datetime.now(UTC).isoformat()
    if n % 10 == 0:
        return {"reference": reference, "event_id": event_id, "status": "in_transit", "occurred_at": moment}
    return {
        "reference": reference,
        "event_id": event_id,
        "kind": "location",
        "location": {"lat": 51.5 + (n % 1000) / 1e5, "lng": -0.1},
        "occurred_at": moment,
    }


def request_bytes(host: str, path: str, key: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def wait_for_drain(partner: Partner, since: datetime, timeout: float) -> tuple[float, int]:
    """Seconds until every message of the partner since `since` is processed, and how many events."""
    started = time.monotonic()
    pending = InboundMessage.objects.filter(
        partner=partner, received_at__gte=since, state=InboundMessage.State.RECEIVED
    )
    while pending.exists() and time.monotonic() - started < timeout:
        time.sleep(0.2)
    events = TrackingEvent.objects.filter(partner=partner, received_at__gte=since).count()
    return time.monotonic() - started, events


def lags(accepted: list[tuple[float, bytes]]) -> list[float]:
    """Seconds from the client's 202 to the message being processed (its events on the timeline)."""
    ids = {}
    for at, body in accepted:
        try:
            ids[json.loads(body)["message_id"]] = at
        except (ValueError, KeyError, TypeError):
            continue
    done = InboundMessage.objects.filter(pk__in=list(ids), processed_at__isnull=False).values_list(
        "pk", "processed_at"
    )
    return [max(0.0, processed.timestamp() - ids[pk]) for pk, processed in done]


HEADER = "".join(
    f"{title:>{width}}"
    for title, width in [
        ("ev/s", 10),
        ("req/s", 9),
        ("p50 ms", 9),
        ("p99 ms", 9),
        ("non-2xx", 9),
        ("lag p50", 10),
        ("lag p99", 10),
        ("drain s", 9),
    ]
)


def row(r: dict) -> str:
    lag50 = f"{r['lag_p50_ms']:.0f} ms" if "lag_p50_ms" in r else "-"
    lag99 = f"{r['lag_p99_ms']:.0f} ms" if "lag_p99_ms" in r else "-"
    drain = f"{r['drain_s']:.1f}" if "drain_s" in r else "-"
    return (
        f"{r['events_per_s']:>10.0f}{r['requests_per_s']:>9.0f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
        f"{r['non_2xx']:>9}{lag50:>10}{lag99:>10}{drain:>9}"
    )


def report(results: dict[str, dict], args: argparse.Namespace) -> str:
    s_max, s_rate, b_max = results["single/max"], results["single/rate"], results["batch/max"]
    c_max, c_rate = results["control/max"], results["control/rate"]
    single_ok = s_max["events_per_s"] >= BUDGET_SINGLE_RATE
    p99_ok = s_rate["p99_ms"] <= BUDGET_SINGLE_P99_MS and s_rate["events_per_s"] >= 0.98 * args.rate
    lines = [
        f"Baton ingest bench — {machine()} — {time.strftime('%Y-%m-%d %H:%M:%S')}",
        f"stack: {args.url}; {args.connections} connections (batch {args.batch_connections}); "
        f"{args.seconds:.0f} s per phase"
        + ("; the worker paused during load phases (acceptance alone)" if args.worker_paused else ""),
        "",
        f"{'phase':<14}{HEADER}",
        *(f"{name:<14}{row(r)}" for name, r in results.items()),
        "",
        "Baton / control (same run):",
        f"  single-event throughput   {s_max['requests_per_s'] / c_max['requests_per_s']:.2f}x "
        f"({s_max['requests_per_s']:.0f} vs {c_max['requests_per_s']:.0f} req/s)",
        f"  p99 at {args.rate:.0f} req/s         {s_rate['p99_ms'] / c_rate['p99_ms']:.2f}x "
        f"({s_rate['p99_ms']:.1f} vs {c_rate['p99_ms']:.1f} ms)",
        f"  batch events/s            {b_max['events_per_s'] / c_max['requests_per_s']:.1f}x "
        "control's rows/s",
        f"  worker processing         single {s_max['processed_events_per_s']:.0f} ev/s, "
        f"batch {b_max['processed_events_per_s']:.0f} ev/s (events on timelines / (phase + drain))",
        "",
        "Budgets (PRODUCT.md):",
        f"  single >= {BUDGET_SINGLE_RATE:.0f} ev/s accepted    {s_max['events_per_s']:8.0f} ev/s   "
        f"{verdict(single_ok)}",
        f"  single p99 <= {BUDGET_SINGLE_P99_MS:.0f} ms at {args.rate:.0f}/s  {s_rate['p99_ms']:8.1f} ms "
        f"(at {s_rate['events_per_s']:.0f} ev/s)   {verdict(p99_ok)}",
        f"  batch >= {BUDGET_BATCH_RATE:.0f} ev/s          {b_max['events_per_s']:8.0f} ev/s   "
        f"{verdict(b_max['events_per_s'] >= BUDGET_BATCH_RATE)}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8765")
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--batch-connections", type=int, default=4)
    parser.add_argument(
        "--rate", type=float, default=BUDGET_SINGLE_RATE, help="single-event rate phase, req/s"
    )
    parser.add_argument("--shipments", type=int, default=30000, help="about 10 events each")
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument(
        "--worker-paused",
        action="store_true",
        help="the worker stops consuming during each load phase and drains after it: acceptance alone",
    )
    args = parser.parse_args()

    partner, key, references, run = prepare(args.shipments)
    connection.close()
    host = args.url.split("//", 1)[1]
    counter = iter(range(10**12))

    def single(n: int) -> bytes:
        i = next(counter)
        body = json.dumps(event(references[i % len(references)], f"{run}-s{i}", i)).encode()
        return request_bytes(host, "/api/partner/v1/events", key, body)

    def control(n: int) -> bytes:
        i = next(counter)
        body = json.dumps(event(references[i % len(references)], f"{run}-c{i}", i)).encode()
        return request_bytes(host, "/bench/control", key, body)

    def batch(n: int) -> bytes:
        first = next(counter) * BATCH
        events = [
            event(references[(first + j) % len(references)], f"{run}-b{first + j}", first + j)
            for j in range(BATCH)
        ]
        return request_bytes(host, "/api/partner/v1/events", key, json.dumps({"events": events}).encode())

    results: dict[str, dict] = {}
    run_load(args.url, single, connections=4, duration=3)  # warm up: connections, caches, worker
    wait_for_drain(partner, timezone.now() - timedelta(minutes=5), args.drain_timeout)

    def phase(
        name: str, make, *, connections: int, rate: float | None = None, per_request: int = 1, baton: bool
    ) -> None:
        since = timezone.now()
        if args.worker_paused:
            celery_app.control.cancel_consumer("celery", reply=True, timeout=5)
        outcome = run_load(
            args.url,
            make,
            connections=connections,
            duration=args.seconds,
            rate=rate,
            sample_every=10 if baton else 0,
        )
        figures = describe(outcome, per_request=per_request)
        figures["statuses"] = outcome.statuses
        if args.worker_paused:
            celery_app.control.add_consumer("celery", reply=True, timeout=5)
        if baton:
            drain, events = wait_for_drain(partner, since, args.drain_timeout)
            lag = lags(outcome.accepted_at)
            figures.update(
                drain_s=drain,
                processed_events_per_s=events / (args.seconds + drain),
                lag_p50_ms=percentile(lag, 50) * 1000,
                lag_p99_ms=percentile(lag, 99) * 1000,
                lag_samples=len(lag),
            )
        results[name] = figures
        print(f"  {name:<14}{row(figures)}", flush=True)

    paused = ", worker paused during load phases" if args.worker_paused else ""
    print(f"ingest bench on {machine()}, {args.seconds:.0f} s per phase{paused}", flush=True)
    phase("control/max", control, connections=args.connections, baton=False)
    phase("single/max", single, connections=args.connections, baton=True)
    phase("control/rate", control, connections=args.connections, rate=args.rate, baton=False)
    phase("single/rate", single, connections=args.connections, rate=args.rate, baton=True)
    phase("batch/max", batch, connections=args.batch_connections, per_request=BATCH, baton=True)

    text = report(results, args)
    print("\n" + text)
    save("ingest", text + "\n", {"machine": machine(), "args": vars(args), "results": results})


if __name__ == "__main__":
    main()
