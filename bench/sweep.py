"""The flag sweep over 1,000,000 open shipments on PostgreSQL (issue 12's budget: one pass <= 2 s).

    bench/run_all.sh sweep        # or, with the bench environment set:
    .venv/bin/python bench/sweep.py [--open 1000000] [--passes 5]

Uses the bench load (`bench/run_all.sh load`: 1M shipments, ~10M events, custody chains). Most loaded
jobs are finished, so the bench first reopens `--open` of them as they would be mid-journey: a status
short of delivery; heard from by their holder within the last 40 minutes (fleets and couriers) or
20 hours (carriers), so a good share are past the shortest threshold and must be judged one by one;
about 1% silent for 30 hours; 0.5% with a passed ETA; 0.5% at risk. Then it times passes of
`run_sweep`: the first raises those flags (and publishes each change to the listeners:
notifications, webhooks, proactive rules), the next ones find nothing new, which is what beat runs
every minute. Every pass reads every open shipment.
The reopened shipments stay open (the read bench does not care; `load` makes a fresh set).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, save, setup_django, verdict

setup_django()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from partners.services.sweep import run_sweep  # noqa: E402

BUDGET_S = 2.0


def reopen(count: int) -> None:
    """Make `count` loaded shipments open and mostly healthy, in one statement (ids are 1..N)."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE tracking_shipment s SET
                status = (ARRAY['assigned','picked_up','in_transit','out_for_delivery'])[1 + s.id %% 4],
                last_heard_at = CASE
                    WHEN s.id %% 100 = 7 THEN %(now)s - interval '30 hours'
                    -- carriers report every few hours, couriers and fleets every few minutes
                    WHEN p.kind = 'carrier' THEN %(now)s - (s.id %% 1200) * interval '1 minute'
                    ELSE %(now)s - (s.id %% 40) * interval '1 minute' END,
                eta = CASE WHEN s.id %% 200 = 11 THEN %(now)s - interval '10 minutes'
                           ELSE %(now)s + interval '3 hours' END,
                late_risk = CASE WHEN s.id %% 200 = 13 THEN 0.8 ELSE 0.1 END,
                alerts = '[]'::jsonb
            FROM partners_custody c JOIN partners_partner p ON p.id = c.partner_id
            WHERE c.id = s.current_custody_id AND s.id <= %(count)s
            """,
            {"now": now, "count": count},
        )
        cursor.execute(
            """
            UPDATE partners_custody c SET ended_at = NULL
            FROM tracking_shipment s WHERE s.current_custody_id = c.id AND s.id <= %(count)s
            AND c.ended_at IS NOT NULL
            """,
            {"count": count},
        )
        cursor.execute("ANALYZE tracking_shipment")
        cursor.execute(
            "SELECT count(*) FROM tracking_shipment WHERE status NOT IN ('delivered','returned','cancelled')"
        )
        print(f"open shipments: {cursor.fetchone()[0]:,}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--open", type=int, default=1_000_000, help="Shipments to reopen (default all 1M).")
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--skip-reopen", action="store_true")
    args = parser.parse_args()
    if not args.skip_reopen:
        started = time.perf_counter()
        reopen(args.open)
        print(f"reopened in {time.perf_counter() - started:.1f} s", flush=True)

    timings, results = [], []
    for number in range(1, args.passes + 1):
        result = run_sweep()
        timings.append(result.seconds)
        results.append(result)
        print(f"pass {number}: {result.summary()}", flush=True)
    steady = timings[1:] or timings
    lines = [
        f"Baton sweep bench — {machine()}",
        f"first pass (raises and publishes {results[0].changed:,} changes): {timings[0]:.2f} s",
        f"later passes (nothing new), median {statistics.median(steady):.2f} s, worst {max(steady):.2f} s",
        f"counts: {results[-1].counts}",
        f"budget: one pass over 1,000,000 open shipments <= {BUDGET_S:.0f} s: "
        f"{verdict(max(steady) <= BUDGET_S)} (steady state)",
    ]
    text = "\n".join(lines)
    print(text)
    save("sweep", text, {"first_s": timings[0], "steady_s": steady, "counts": results[-1].counts})


if __name__ == "__main__":
    main()
