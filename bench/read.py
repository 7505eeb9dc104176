"""Agent timeline and customer tracking over HTTP against ~10M stored events, with query counts.

    bench/run_all.sh read
    # or, with the stack already up at --url and the bench database loaded (bench/load_events.py):
    DATABASE_URL=... REDIS_URL=... SECRET_KEY=... .venv/bin/python bench/read.py --url http://127.0.0.1:8765

Random shipments (uniform over the loaded ones, so the long-trail 1% is in the sample) are read
  - at a fixed rate (open loop, latency counted from the scheduled start): the budget's figure;
  - closed loop on several connections: the most the stack serves, and latency under that load;
and, in this process through Django's test client, the queries per request (CaptureQueriesContext)
and the server time without HTTP.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import describe, machine, percentile, run_load, save, setup_django, verdict

setup_django()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, Max  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from bench.load_events import reference_for, token_for  # noqa: E402
from tracking.models import Shipment, TrackingEvent  # noqa: E402

BUDGET_TIMELINE_P99_MS = 20.0
BUDGET_TIMELINE_MAX_RPS = 400.0
BUDGET_TRACKING_P99_MS = 30.0


def staff_token() -> str:
    user, _ = get_user_model().objects.get_or_create(username="bench-agent", defaults={"is_staff": True})
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def in_process(paths: list[str], headers: dict[str, str]) -> tuple[list[int], list[float]]:
    """Queries and seconds per request, through Django's test client (no HTTP, no gunicorn)."""
    client = Client(**headers)
    queries, seconds = [], []
    for path in paths:
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(path)
            seconds.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code)
        queries.append(len(captured.captured_queries))
    return queries, seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8765")
    parser.add_argument("--seconds", type=float, default=15.0, help="per phase")
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s of the fixed-rate phases")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    bench_shipments = Shipment.objects.filter(reference__startswith="BENCH-")
    count = bench_shipments.count()
    if not count:
        sys.exit("no bench shipments: run bench/load_events.py (or bench/run_all.sh load) first")
    events = TrackingEvent.objects.count()
    largest = TrackingEvent.objects.values("shipment_id").annotate(n=Count("id")).order_by("-n").first()
    biggest_ref = Shipment.objects.get(pk=largest["shipment_id"]).reference
    max_id = bench_shipments.aggregate(m=Max("id"))["m"]
    rng = random.Random(args.seed)
    key = staff_token()
    connection.close()
    host = args.url.split("//", 1)[1]
    auth = f"Authorization: Token {key}\r\n"

    def timeline(n: int) -> bytes:
        ref = reference_for(rng.randint(1, max_id))
        return f"GET /api/v1/shipments/{ref}/timeline HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n".encode()

    def tracking_json(n: int) -> bytes:
        token = token_for(rng.randint(1, max_id))
        return f"GET /api/public/v1/track/{token} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()

    def tracking_page(n: int) -> bytes:
        return f"GET /t/{token_for(rng.randint(1, max_id))} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()

    def control(n: int) -> bytes:
        ref = reference_for(rng.randint(1, max_id))
        return f"GET /bench/control-read/{ref} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n".encode()

    def biggest(n: int) -> bytes:
        return f"GET /api/v1/shipments/{biggest_ref}/timeline HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n".encode()

    print(f"read bench on {machine()}: {count:,} shipments, {events:,} events", flush=True)
    results: dict[str, dict] = {}
    run_load(args.url, timeline, connections=4, duration=3)  # warm up
    for name, make, rate, connections in [
        ("control/rate", control, args.rate, args.connections),
        ("control/max", control, None, args.connections),
        ("timeline/rate", timeline, args.rate, args.connections),
        ("timeline/max", timeline, None, args.connections),
        ("timeline/largest", biggest, 20.0, 2),
        ("track-json/rate", tracking_json, args.rate, args.connections),
        ("track-json/max", tracking_json, None, args.connections),
        ("track-page/rate", tracking_page, args.rate, args.connections),
    ]:
        outcome = run_load(args.url, make, connections=connections, duration=args.seconds, rate=rate)
        results[name] = describe(outcome)
        results[name]["statuses"] = outcome.statuses
        r = results[name]
        print(
            f"  {name:<17} {r['requests_per_s']:7.0f} req/s  p50 {r['p50_ms']:6.1f} ms  "
            f"p99 {r['p99_ms']:6.1f} ms  non-2xx {r['non_2xx']}",
            flush=True,
        )

    sample = [rng.randint(1, max_id) for _ in range(300)]
    agent = {"HTTP_AUTHORIZATION": f"Token {key}"}
    timelines = [f"/api/v1/shipments/{reference_for(i)}/timeline" for i in sample]
    t_queries, t_seconds = in_process(timelines, agent)
    j_queries, j_seconds = in_process([f"/api/public/v1/track/{token_for(i)}" for i in sample], {})
    p_queries, p_seconds = in_process([f"/t/{token_for(i)}" for i in sample], {})
    sizes = dict(
        TrackingEvent.objects.filter(shipment_id__in=sample)
        .values("shipment_id")
        .annotate(n=Count("id"))
        .values_list("shipment_id", "n")
    )
    big_q, _ = in_process([f"/api/v1/shipments/{biggest_ref}/timeline"], agent)

    def qline(label: str, queries: list[int], seconds: list[float]) -> str:
        spread = "constant" if min(queries) == max(queries) else f"varies {min(queries)}-{max(queries)}"
        return (
            f"  {label:<22} queries/request {statistics.mean(queries):4.1f} ({spread}); server time p50 "
            f"{percentile(seconds, 50) * 1000:5.1f} ms, p99 {percentile(seconds, 99) * 1000:5.1f} ms"
        )

    t, j, p = results["timeline/rate"], results["track-json/rate"], results["track-page/rate"]
    t_max, c_rate, c_max = results["timeline/max"], results["control/rate"], results["control/max"]
    p99_ok = t["p99_ms"] <= BUDGET_TIMELINE_P99_MS and t["non_2xx"] == 0
    max_ok = t_max["requests_per_s"] >= BUDGET_TIMELINE_MAX_RPS and t_max["non_2xx"] == 0
    big = results["timeline/largest"]
    lines = [
        f"Baton read bench — {machine()} — {time.strftime('%Y-%m-%d %H:%M:%S')}",
        f"data: {count:,} shipments, {events:,} tracking events; events per sampled timeline: "
        f"median {statistics.median(sizes.values()):.0f}, max {max(sizes.values())}; largest timeline "
        f"{largest['n']} events ({biggest_ref})",
        f"stack: {args.url}; rate phases {args.rate:.0f} req/s open loop; "
        f"max phases {args.connections} connections",
        "",
        f"{'over HTTP':<18}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'non-2xx':>9}",
    ]
    for name, r in results.items():
        lines.append(
            f"{name:<18}{r['requests_per_s']:>8.0f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['max_ms']:>9.1f}{r['non_2xx']:>9}"
        )
    lines += [
        "",
        "In process (Django test client, 300 random shipments):",
        qline("agent timeline", t_queries, t_seconds),
        qline("tracking JSON", j_queries, j_seconds),
        qline("tracking page (HTML)", p_queries, p_seconds),
        f"  largest timeline ({largest['n']} events): {big_q[0]} queries",
        "",
        "Issue 11 target: agent timeline over HTTP at "
        f"{events / 1e6:.1f}M events (control: /bench/control-read, same auth, one row):",
        f"  p99 at {args.rate:.0f} req/s <= {BUDGET_TIMELINE_P99_MS:.0f} ms     {t['p99_ms']:6.1f} ms "
        f"({t['p99_ms'] / c_rate['p99_ms']:.2f}x control's {c_rate['p99_ms']:.1f} ms)   {verdict(p99_ok)}",
        f"  flat out >= {BUDGET_TIMELINE_MAX_RPS:.0f} req/s         {t_max['requests_per_s']:6.0f} req/s "
        f"({t_max['requests_per_s'] / c_max['requests_per_s']:.2f}x control's "
        f"{c_max['requests_per_s']:.0f} req/s)   {verdict(max_ok)}",
        "",
        "Budgets (PRODUCT.md):",
        f"  tracking p99 <= {BUDGET_TRACKING_P99_MS:.0f} ms server time         "
        f"JSON {j['p99_ms']:.1f} ms, page {p['p99_ms']:.1f} ms over HTTP (an upper bound on server time)   "
        f"{verdict(max(j['p99_ms'], p['p99_ms']) <= BUDGET_TRACKING_P99_MS)}",
        f"  tracking: a constant number of queries       JSON {sorted(set(j_queries))}, "
        f"page {sorted(set(p_queries))}   "
        f"{verdict(len(set(j_queries)) == 1 and len(set(p_queries)) == 1)}",
        f"  (the largest timeline, {largest['n']} events: p99 {big['p99_ms']:.1f} ms at 20 req/s)",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    save("read", text + "\n", {"machine": machine(), "args": vars(args), "results": results})


if __name__ == "__main__":
    main()
