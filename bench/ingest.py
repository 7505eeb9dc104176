"""Partner ingest over HTTP on the running stack, beside the control endpoint, against the budgets.

    bench/run_all.sh ingest          # starts gunicorn + a Celery worker on the bench database
    # or, with the stack already up at --url:
    DATABASE_URL=... REDIS_URL=... SECRET_KEY=... .venv/bin/python bench/ingest.py --url http://127.0.0.1:8765

Phases (each Baton phase waits for the worker to drain before the next, so they do not overlap):
  control/max      the control endpoint (verify the key, insert one row), closed loop
  single/max       one event per request, closed loop: the most the stack accepts
  worker/drain     single events with the worker paused, then the time the worker takes to apply
                   them: worker throughput on single-event messages
  control/rate     the control endpoint at the budget rate (800/s), open loop
  single/rate      one event per request at the budget rate, open loop: latency at that rate
  control/500      the control endpoint at the sustained rate, open loop
  sustained/500    one event per request at 500/s for 60 s, open loop: the lag from acceptance to the
                   timeline for every request (p50/p90/p99/max) and the backlog sampled every second
  batch/max        500 events per request, closed loop
  kill/300         single events at 300/s while the worker is killed with SIGKILL (its supervisor in
                   run_all.sh restarts it): acknowledged events that never reach their timeline
Lag is acceptance (the client got its 202) to the message's events being on the timeline
(`processed_at`, stamped after the events commit); every 10th request outside the sustained phase.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Outcome, describe, machine, percentile, run_load, save, setup_django, verdict

setup_django()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from hub.celery import app as celery_app  # noqa: E402
from partners.models import Custody, InboundMessage, Partner  # noqa: E402
from tracking.models import Shipment, TrackingEvent  # noqa: E402

BUDGET_SINGLE_RATE = 800.0
BUDGET_SINGLE_RATIO = 0.8
BUDGET_SINGLE_P99_MS = 50.0
BUDGET_LAG_P99_S = 1.0
BUDGET_BACKLOG_S = 1.0
BUDGET_WORKER_PER_CORE = 600.0
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
    custodies = Custody.objects.bulk_create(
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
    # As `assign_shipment` leaves them: reconciled, the partner's custody current.
    for shipment, custody in zip(created, custodies, strict=True):
        shipment.current_custody_id = custody.pk
    Shipment.objects.bulk_update(created, ["current_custody"], batch_size=1000)
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


class BacklogSampler(threading.Thread):
    """Every second: messages of the partner stored since `since` and not yet processed."""

    def __init__(self, partner: Partner, since: datetime) -> None:
        super().__init__(daemon=True)
        self.partner, self.since = partner, since
        self.samples: list[tuple[float, int]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        pending = InboundMessage.objects.filter(
            partner=self.partner, received_at__gte=self.since, state=InboundMessage.State.RECEIVED
        )
        try:
            while not self.halt.wait(1.0):
                self.samples.append((time.monotonic() - started, pending.count()))
        finally:
            connection.close()

    def stop(self) -> list[tuple[float, int]]:
        self.halt.set()
        self.join(timeout=10)
        return self.samples


def histogram(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(values, 50) * 1000,
        "p90_ms": percentile(values, 90) * 1000,
        "p99_ms": percentile(values, 99) * 1000,
        "max_ms": max(values, default=0.0) * 1000,
        "samples": len(values),
    }


def worker_pid(pidfile: str) -> int | None:
    try:
        return int(Path(pidfile).read_text().strip())
    except (OSError, ValueError):
        return None


def kill_worker(pidfile: str) -> bool:
    """SIGKILL the worker's process group (run_all.sh starts it with setsid under a restart loop)."""
    pid = worker_pid(pidfile)
    if pid is None:
        return False
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def missing_after(accepted: list[tuple[float, bytes]], timeout: float) -> tuple[int, int, float]:
    """Acknowledged messages not processed within `timeout`: (missing, acknowledged, seconds waited)."""
    ids = set()
    for _, body in accepted:
        try:
            ids.add(json.loads(body)["message_id"])
        except (ValueError, KeyError, TypeError):
            continue
    started = time.monotonic()
    while True:
        done = InboundMessage.objects.filter(pk__in=list(ids), processed_at__isnull=False).count()
        if done == len(ids) or time.monotonic() - started > timeout:
            return len(ids) - done, len(ids), time.monotonic() - started
        time.sleep(1.0)


def ratio(value: float, control: float) -> str:
    return f"{value / control:.2f}x" if control else "-"


def report(results: dict[str, dict], extra: dict, args: argparse.Namespace) -> str:
    c_max, c_rate, c_500 = results["control/max"], results["control/rate"], results["control/500"]
    s_max, s_rate, b_max = results["single/max"], results["single/rate"], results["batch/max"]
    lag, worker = extra["sustained_lag"], extra["worker"]
    single_ok = (
        s_max["events_per_s"] >= BUDGET_SINGLE_RATE
        and s_max["requests_per_s"] >= BUDGET_SINGLE_RATIO * c_max["requests_per_s"]
    )
    backlog_end_s = extra["backlog_end"] / worker["events_per_s"] if worker["events_per_s"] else float("inf")
    lag_ok = lag["p99_ms"] <= BUDGET_LAG_P99_S * 1000 and backlog_end_s <= BUDGET_BACKLOG_S
    per_core = worker["events_per_s"] / args.worker_processes
    p99_ok = s_rate["p99_ms"] <= BUDGET_SINGLE_P99_MS and s_rate["events_per_s"] >= 0.98 * args.rate
    killed = extra.get("kill")
    targets = [
        (
            "single events accepted, flat out",
            f"{s_max['events_per_s']:.0f} ev/s",
            f"{ratio(s_max['requests_per_s'], c_max['requests_per_s'])} of {c_max['requests_per_s']:.0f}",
            ">= 0.8x and >= 800 ev/s",
            single_ok,
        ),
        (
            f"202-to-timeline lag, {args.sustained_rate:.0f} ev/s for {args.sustained_seconds:.0f} s",
            f"p99 {lag['p99_ms']:.0f} ms; end {backlog_end_s:.2f} s of work",
            f"{ratio(lag['p99_ms'], c_500['p99_ms'])} control p99",
            "p99 <= 1 s; <= 1 s of work",
            lag_ok,
        ),
        (
            "worker throughput, single-event messages, per core",
            f"{per_core:.0f} ev/s ({worker['events_per_s']:.0f} in all)",
            ratio(worker["events_per_s"], c_max["requests_per_s"]),
            ">= 600 ev/s per core",
            per_core >= BUDGET_WORKER_PER_CORE,
        ),
        (
            "batches of 500",
            f"{b_max['events_per_s']:.0f} ev/s",
            f"{ratio(b_max['events_per_s'], c_max['requests_per_s'])} rows/s",
            ">= 10,000 ev/s",
            b_max["events_per_s"] >= BUDGET_BATCH_RATE,
        ),
    ]
    if killed:
        targets.append(
            (
                "acknowledged, then missing after kill -9 of the worker",
                f"{killed['missing']} of {killed['acknowledged']} ({killed['waited_s']:.0f} s wait)",
                "-",
                "0",
                killed["missing"] == 0 and killed["killed"],
            )
        )
    lines = [
        f"Baton ingest bench — {machine()} — {time.strftime('%Y-%m-%d %H:%M:%S')}",
        f"stack: {args.url}; {args.connections} connections (batch {args.batch_connections}); "
        f"{args.seconds:.0f} s per phase, sustained {args.sustained_seconds:.0f} s at "
        f"{args.sustained_rate:.0f}/s; {args.worker_processes} worker processes",
        "",
        f"{'phase':<16}{HEADER}",
        *(f"{name:<16}{row(r)}" for name, r in results.items()),
        "",
        f"Acceptance-to-timeline lag, {args.sustained_rate:.0f} ev/s offered for "
        f"{args.sustained_seconds:.0f} s ({lag['samples']} requests): p50 {lag['p50_ms']:.0f} ms, "
        f"p90 {lag['p90_ms']:.0f} ms, p99 {lag['p99_ms']:.0f} ms, max {lag['max_ms']:.0f} ms",
        "Worker backlog during the sustained phase (messages stored, not yet on the timeline):",
        "  " + "  ".join(f"{t:.0f}s:{n}" for t, n in extra["backlog"]),
        f"  at the end: {extra['backlog_end']} messages = {backlog_end_s:.2f} s of work "
        f"at the worker's {worker['events_per_s']:.0f} ev/s",
        "",
        "Issue 11 targets (ratios against the control endpoint in this run):",
        f"  {'figure':<56}{'measured':<38}{'vs control':<22}{'target':<28}verdict",
        *(
            f"  {figure:<56}{measured:<38}{versus:<22}{target:<28}{verdict(ok)}"
            for figure, measured, versus, target, ok in targets
        ),
        f"  {'(agent timeline: bench/run_all.sh read)':<58}",
        "",
        "Budgets (PRODUCT.md):",
        f"  single p99 <= {BUDGET_SINGLE_P99_MS:.0f} ms at {args.rate:.0f}/s  {s_rate['p99_ms']:8.1f} ms "
        f"(at {s_rate['events_per_s']:.0f} ev/s; control {c_rate['p99_ms']:.1f} ms, "
        f"{ratio(s_rate['p99_ms'], c_rate['p99_ms'])})   {verdict(p99_ok)}",
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
    parser.add_argument("--sustained-rate", type=float, default=500.0)
    parser.add_argument("--sustained-seconds", type=float, default=60.0)
    parser.add_argument(
        "--worker-processes", type=int, default=int(os.environ.get("BENCH_CELERY_CONCURRENCY", 2))
    )
    parser.add_argument("--worker-pidfile", default="", help="the worker's pid file: enables the kill phase")
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
    queue = celery_app.conf.task_default_queue

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

    def pause(paused: bool) -> None:
        # limit=1: return at the (one) worker's reply, rather than wait out the timeout, during
        # which a resumed worker would already be draining.
        if paused:
            celery_app.control.cancel_consumer(queue, reply=True, timeout=5, limit=1)
        else:
            celery_app.control.add_consumer(queue, reply=True, timeout=5, limit=1)

    results: dict[str, dict] = {}
    extra: dict = {}
    run_load(args.url, single, connections=4, duration=3)  # warm up: connections, caches, worker
    wait_for_drain(partner, timezone.now() - timedelta(minutes=5), args.drain_timeout)

    def phase(
        name: str,
        make,
        *,
        connections: int,
        rate: float | None = None,
        per_request: int = 1,
        baton: bool,
        seconds: float | None = None,
        paused: bool = False,
        sample_every: int = 10,
    ) -> Outcome:
        since = timezone.now()
        if paused or args.worker_paused:
            pause(True)
        outcome = run_load(
            args.url,
            make,
            connections=connections,
            duration=seconds or args.seconds,
            rate=rate,
            sample_every=sample_every if baton else 0,
        )
        figures = describe(outcome, per_request=per_request)
        figures["statuses"] = outcome.statuses
        resumed = time.monotonic()
        if paused or args.worker_paused:
            pause(False)
        if baton:
            _, events = wait_for_drain(partner, since, args.drain_timeout)
            drain = time.monotonic() - resumed
            lag = lags(outcome.accepted_at)
            figures.update(
                drain_s=drain,
                processed_events_per_s=events / ((seconds or args.seconds) + drain),
                lag_p50_ms=percentile(lag, 50) * 1000,
                lag_p99_ms=percentile(lag, 99) * 1000,
                lag_samples=len(lag),
            )
            if paused:
                figures["drain_events_per_s"] = events / drain if drain else 0.0
        results[name] = figures
        print(f"  {name:<16}{row(figures)}", flush=True)
        return outcome

    paused_note = ", worker paused during load phases" if args.worker_paused else ""
    print(f"ingest bench on {machine()}, {args.seconds:.0f} s per phase{paused_note}", flush=True)
    phase("control/max", control, connections=args.connections, baton=False)
    phase("single/max", single, connections=args.connections, baton=True)
    phase("worker/drain", single, connections=args.connections, baton=True, paused=True)
    extra["worker"] = {"events_per_s": results["worker/drain"]["drain_events_per_s"]}
    phase("control/rate", control, connections=args.connections, rate=args.rate, baton=False)
    phase("single/rate", single, connections=args.connections, rate=args.rate, baton=True)
    phase("control/500", control, connections=args.connections, rate=args.sustained_rate, baton=False)

    sampler = BacklogSampler(partner, timezone.now())
    sampler.start()
    outcome = phase(
        "sustained/500",
        single,
        connections=args.connections,
        rate=args.sustained_rate,
        baton=True,
        seconds=args.sustained_seconds,
        sample_every=1,
    )
    extra["backlog"] = [(t, n) for t, n in sampler.stop() if t <= args.sustained_seconds + 0.5]
    extra["backlog_end"] = extra["backlog"][-1][1] if extra["backlog"] else 0
    extra["sustained_lag"] = histogram(lags(outcome.accepted_at))

    phase("batch/max", batch, connections=args.batch_connections, per_request=BATCH, baton=True)

    if args.worker_pidfile:
        killer = threading.Timer(5.0, lambda: extra.setdefault("killed", kill_worker(args.worker_pidfile)))
        killer.start()
        outcome = run_load(
            args.url, single, connections=args.connections, duration=20.0, rate=300.0, sample_every=1
        )
        killer.join()
        missing, acknowledged, waited = missing_after(outcome.accepted_at, timeout=300.0)
        extra["kill"] = {
            "killed": bool(extra.get("killed")),
            "missing": missing,
            "acknowledged": acknowledged,
            "waited_s": waited,
        }
        print(
            f"  kill/300        {acknowledged} acknowledged, {missing} missing after {waited:.0f} s",
            flush=True,
        )

    text = report(results, extra, args)
    print("\n" + text)
    save(
        "ingest",
        text + "\n",
        {"machine": machine(), "args": vars(args), "results": results, "extra": extra},
    )


if __name__ == "__main__":
    main()
