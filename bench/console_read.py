"""Console read bench: queue pages and the shipment page at 1M shipments / 10M events, server time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<x>_bench DJANGO_SETTINGS_MODULE=bench.settings \\
        .venv/bin/python bench/console_read.py

Needs the bench data (bench/load_events.py). So the queues are not empty, it first gives about 1% of
the open bench shipments sweep alerts (stale_custodian, late_risk, eta_passed) and opens 5,000 cases
(a tenth past their SLA), once. Then, in this process through Django's test client (no HTTP), it
requests every queue page (default filters and a partner + area + age filter) and the shipment page
of random shipments as a superuser, and reports queries per request and server time p50/p99.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, percentile, save, setup_django, verdict

setup_django()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Max  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

import hub.wsgi  # noqa: E402, F401 (as gunicorn runs it: views loaded, start-up objects frozen out of GC)
from contactcentre.models import Case  # noqa: E402
from contactcentre.queues import QUEUES  # noqa: E402
from partners.models import Partner  # noqa: E402
from tracking.models import Shipment, TrackingEvent  # noqa: E402
from tracking.statuses import TERMINAL_STATUSES  # noqa: E402

BUDGET_P99_MS = 50.0


def prepare(max_id: int, rng: random.Random) -> None:
    """Give ~1% of open bench shipments alerts and open 5,000 cases, unless done before."""
    if Case.objects.filter(opened_by_rule="bench").exists():
        return
    now = timezone.now()
    open_ids = list(
        Shipment.objects.exclude(status__in=TERMINAL_STATUSES)
        .filter(pk__in=[rng.randint(1, max_id) for _ in range(max_id // 50)])
        .values_list("pk", flat=True)
    )
    with transaction.atomic():
        for alert in ["stale_custodian", "late_risk", "eta_passed"]:
            chosen = rng.sample(open_ids, min(len(open_ids) // 3, len(open_ids)))
            Shipment.objects.filter(pk__in=chosen).update(alerts=[alert], late_risk=0.8)
        cases = [
            Case(
                shipment_id=rng.choice(open_ids),
                channel="phone",
                reason="late",
                opened_by_rule="bench",
                sla_due_at=now + timedelta(hours=rng.randint(-30, 24) if n % 10 == 0 else 24),
            )
            for n in range(5000)
        ]
        Case.objects.bulk_create(cases, batch_size=1000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tracking_shipment; ANALYZE contactcentre_case;")


def measure(client: Client, paths: list[str]) -> tuple[list[int], list[float]]:
    queries, seconds = [], []
    for path in paths:
        # The log keeps 9,000 queries; once full, CaptureQueriesContext's slice counts wrongly.
        connection.queries_log.clear()
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
    parser.add_argument("--rounds", type=int, default=30, help="requests per queue page")
    parser.add_argument("--shipments", type=int, default=300, help="shipment pages")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    max_id = Shipment.objects.aggregate(m=Max("id"))["m"] or 0
    if not max_id:
        sys.exit("no bench shipments: run bench/load_events.py first")
    prepare(max_id, rng)
    count, events = Shipment.objects.count(), TrackingEvent.objects.count()
    user, _ = get_user_model().objects.get_or_create(
        username="bench-console", defaults={"is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    partner = Partner.objects.order_by("pk").first()
    filtered = f"&partner={partner.slug if partner else ''}&area=E1&age=1h"
    results: dict[str, dict[str, float | list[int]]] = {}
    lines = [
        f"Baton console read bench — {machine()} — {time.strftime('%Y-%m-%d %H:%M:%S')}",
        f"data: {count:,} shipments, {events:,} tracking events",
        "",
    ]
    measure(client, ["/console/"] * 3)  # warm up
    for queue in QUEUES:
        for label, query in [("", ""), (" filtered", filtered)]:
            queries, seconds = measure(client, [f"/console/?queue={queue.slug}{query}"] * args.rounds)
            results[f"{queue.slug}{label}"] = {
                "queries": sorted(set(queries)),
                "p50_ms": percentile(seconds, 50) * 1000,
                "p99_ms": percentile(seconds, 99) * 1000,
            }
    # Real references of random rows (other benches add shipments with references of their own).
    picked = [rng.randint(1, max_id) for _ in range(args.shipments * 2)]
    refs = list(Shipment.objects.filter(pk__in=picked).values_list("reference", flat=True))[: args.shipments]
    queries, seconds = measure(client, [f"/console/shipments/{ref}/" for ref in refs])
    results["shipment page"] = {
        "queries": sorted(set(queries)),
        "p50_ms": percentile(seconds, 50) * 1000,
        "p99_ms": percentile(seconds, 99) * 1000,
    }
    for name, r in results.items():
        lines.append(
            f"  {name:<28} queries {r['queries']}  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms"
        )
    worst = max(float(r["p99_ms"]) for r in results.values())  # type: ignore[arg-type]
    constant = all(len(r["queries"]) == 1 for r in results.values())  # type: ignore[arg-type]
    lines += [
        "",
        "Budgets (issue 13):",
        f"  queue pages and shipment page p99 <= {BUDGET_P99_MS:.0f} ms server time: worst {worst:.1f} ms "
        f"{verdict(worst <= BUDGET_P99_MS)}",
        f"  a constant number of queries per page: {verdict(constant)}",
        f"  (mean over all pages {statistics.mean(float(r['p50_ms']) for r in results.values()):.1f} ms p50)",
    ]
    text = "\n".join(lines)
    print(text)
    save("console_read", text + "\n", {"machine": machine(), "args": vars(args), "results": results})


if __name__ == "__main__":
    main()
