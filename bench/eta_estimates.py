"""Issue 12: how long Baton's ETA model takes at scale, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/eta_bench SECRET_KEY=... \\
        .venv/bin/python bench/eta_estimates.py --open 1000000 --history 200000

Fills its own database (the name must contain "bench"; `baton_bench`, which holds the shared
10M-event load, is refused) with `--history` delivered jobs (five status reports each, over the
last 50 days) and `--open` open jobs held by 20 partners of the three kinds, then times:
`refresh_stage_durations` (percentiles in SQL over the history), a first `refresh_estimates`
(every open job gets its estimate: all rows written), a second one at once (nothing changed), and
one five minutes later (what a beat run writes). Migrate the database first (`manage.py migrate`).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import setup_django

setup_django()

from django.db import connection, transaction  # noqa: E402

from bench.load_events import NULL, model_defaults  # noqa: E402
from partners.models import Custody, Partner  # noqa: E402
from partners.services.eta import refresh_estimates, refresh_stage_durations  # noqa: E402
from tracking.models import Shipment, TrackingEvent  # noqa: E402

KINDS = [("fleet", 3), ("subcontractor", 12), ("carrier", 5)]
OPEN = ["assigned", "picked_up", "in_transit", "out_for_delivery", "arriving", "attempt_failed"]
JOURNEY = ["assigned", "picked_up", "in_transit", "out_for_delivery", "delivered"]
SHIPMENT_COLUMNS = (
    "id, reference, customer_name, customer_email, customer_phone, phone_digits, address, postcode, "
    "promised_from, promised_until, status, reason, sub_status, status_at, eta, last_event_at, "
    "last_heard_at, flags, alerts, tracking_token_hash, tracking_token_expires_at, created_at, "
    "updated_at, current_custody_id, eta_source, late_risk_explanation"
)
CUSTODY_COLUMNS = "id, partner_reference, started_at, created_at, shipment_id, partner_id"
EVENT_COLUMNS = (
    "id, shipment_id, partner_id, custody_id, kind, status, occurred_at, received_at, effective_at, "
    "dedupe_key, sequence, applied, flags"
)
_SHIPMENT_EXTRA, SHIPMENT_DEFAULTS = model_defaults(Shipment, SHIPMENT_COLUMNS)
_CUSTODY_EXTRA, CUSTODY_DEFAULTS = model_defaults(Custody, CUSTODY_COLUMNS)
_EVENT_EXTRA, EVENT_DEFAULTS = model_defaults(TrackingEvent, EVENT_COLUMNS)
SHIPMENT_COLUMNS += _SHIPMENT_EXTRA
CUSTODY_COLUMNS += _CUSTODY_EXTRA
EVENT_COLUMNS += _EVENT_EXTRA


def line(*values: str) -> str:
    return "\t".join(values)


def load(open_jobs: int, history: int, rng: random.Random, now: datetime) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("SET LOCAL session_replication_role = replica")
        tables = "tracking_trackingevent, partners_custody, tracking_shipment, partners_stageduration"
        cursor.execute(f"TRUNCATE {tables} CASCADE")
        Partner.objects.filter(slug__startswith="eta-bench-").delete()
        partners: list[int] = []
        for kind, number in KINDS:
            for n in range(number):
                partner = Partner(
                    slug=f"eta-bench-{kind}-{n}", name=f"Bench {kind} {n}", kind=kind, adapter="native"
                )
                partner.rotate_api_key()
                partner.save()
                partners.append(partner.pk)
        raw = cursor.cursor if hasattr(cursor, "cursor") else cursor
        expires = (now + timedelta(days=90)).isoformat()
        shipments, custody, events = [], [], []
        event_id = 0
        for i in range(1, history + open_jobs + 1):
            partner = rng.choice(partners)
            delivered = i <= history
            created = (
                now - timedelta(days=rng.uniform(1, 50))
                if delivered
                else now - timedelta(hours=rng.uniform(1, 8))
            )
            moment = created
            reached = []
            steps = JOURNEY if delivered else JOURNEY[: JOURNEY.index(rng.choice(OPEN[:4])) + 1]
            for status in steps:
                moment = min(moment + timedelta(minutes=rng.uniform(10, 90)), now)
                reached.append((status, moment))
            status, status_at = reached[-1]
            if not delivered and rng.random() < 0.05:
                status = rng.choice(OPEN[4:])
            promised = (
                NULL if rng.random() < 0.1 else (created + timedelta(hours=rng.uniform(3, 8))).isoformat()
            )
            eta = NULL
            if not delivered and rng.random() < 0.4:
                eta = (now + timedelta(minutes=rng.uniform(-30, 180))).isoformat()
            heard = status_at + timedelta(minutes=rng.uniform(0, 20))
            shipment_row = [str(i), f"ETA-BENCH-{i:07d}", "Bench Customer", "", "", "", "1 Bench Street"]
            shipment_row += ["N1 0PQ", NULL, promised, status, "", "", status_at.isoformat(), eta]
            shipment_row += [status_at.isoformat(), min(heard, now).isoformat(), "[]", "[]"]
            shipment_row += [hashlib.sha256(f"eta-bench-{i}".encode()).hexdigest(), expires]
            shipment_row += [created.isoformat(), created.isoformat(), str(i), "", ""]
            shipments.append(line(*shipment_row, *SHIPMENT_DEFAULTS))
            started = created.isoformat()
            custody.append(
                line(str(i), f"JOB-{i}", started, started, str(i), str(partner), *CUSTODY_DEFAULTS)
            )
            if delivered:
                for sequence, (step, at) in enumerate(reached, start=1):
                    event_id += 1
                    event_row = [str(event_id), str(i), str(partner), str(i), "status", step]
                    event_row += [
                        at.isoformat(),
                        at.isoformat(),
                        at.isoformat(),
                        f"e{event_id}",
                        str(sequence),
                    ]
                    events.append(line(*event_row, "t", "[]", *EVENT_DEFAULTS))
        for table, columns, rows in (
            ("tracking_shipment", SHIPMENT_COLUMNS, shipments),
            ("partners_custody", CUSTODY_COLUMNS, custody),
            ("tracking_trackingevent", EVENT_COLUMNS, events),
        ):
            with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for start in range(0, len(rows), 10000):
                    copy.write("\n".join(rows[start : start + 10000]) + "\n")
        for table in ("tracking_shipment", "partners_custody", "tracking_trackingevent"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tracking_shipment, partners_custody, tracking_trackingevent")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--open", type=int, default=1_000_000)
    parser.add_argument("--history", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument(
        "--skip-load", action="store_true", help="time the refreshes on the data already there"
    )
    args = parser.parse_args()
    name = connection.settings_dict["NAME"]
    if connection.vendor != "postgresql" or "bench" not in name or name == "baton_bench":
        sys.exit(f"refusing database {name!r}: use a PostgreSQL database of your own named *bench*")
    now = datetime.now(UTC)
    if not args.skip_load:
        started = time.perf_counter()
        load(args.open, args.history, random.Random(args.seed), now)
        took = time.perf_counter() - started
        print(f"loaded {args.history:,} delivered and {args.open:,} open jobs in {took:.0f} s")
    learned = refresh_stage_durations(now)
    print(f"refresh_stage_durations: {learned.rows} rows in {learned.seconds:.1f} s")
    for label, moment in (("first", now), ("again", now), ("5 min later", now + timedelta(minutes=5))):
        result = refresh_estimates(moment)
        rate = result.open / result.seconds if result.seconds else 0
        print(f"refresh_estimates ({label}): {result.summary()} ({rate:,.0f} shipments/s)")


if __name__ == "__main__":
    main()
