"""Load ~10 million tracking events over ~1 million shipments into the bench database, fast.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/baton_bench SECRET_KEY=x \
        .venv/bin/python bench/load_events.py --shipments 1000000 --events 10000000

Rows go in with PostgreSQL COPY while the tables' secondary indexes are dropped and foreign-key
triggers are off (session_replication_role = replica, which needs a superuser: the bench database's
owner); the indexes are rebuilt and the tables ANALYZEd afterwards, so the end state is what Baton's
migrations define. The data is consistent by construction: every event belongs to a shipment and to
the custody that held it, timelines are already reconciled (sequence, applied, effective_at), and
each shipment's status is its journey's last status.

Shipment i has reference BENCH-<i, 7 digits> and customer token bench-token-<i> (stored hashed as
the model does), which bench/read.py uses. The script empties the bench tables first and refuses to
run on a database whose name does not contain "bench" unless --force is given.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import setup_django

setup_django()

from django.db import connection, transaction  # noqa: E402
from django.db.models import Model  # noqa: E402

from partners.models import Custody, Partner  # noqa: E402
from tracking.models import Shipment, TrackingEvent  # noqa: E402

PARTNERS = [("fleet", 3), ("subcontractor", 12), ("carrier", 5)]
POSTCODES = ["SW1A 2AA", "N1 0PQ", "E14 5AB", "M1 1AE", "B2 4QA", "LS1 4AP", "G1 1XQ", "BS1 5TR", "CF10 1EP"]
CITIES = [(51.5034, -0.1276), (51.5362, -0.1033), (51.5054, -0.0235), (53.4808, -2.2426), (52.4797, -1.8986)]
TABLES = ["tracking_trackingevent", "partners_custody", "tracking_shipment"]
EVENT_COLUMNS = (
    "id, shipment_id, partner_id, custody_id, message_id, kind, status, reason, sub_status, raw_status, "
    "occurred_at, received_at, effective_at, latitude, longitude, eta, proof, note, details, event_id, "
    "dedupe_key, sequence, applied, flags"
)
SHIPMENT_COLUMNS = (
    "id, reference, customer_name, customer_email, customer_phone, phone_digits, address, postcode, "
    "latitude, longitude, promised_from, promised_until, status, reason, sub_status, status_at, eta, "
    "last_event_at, proof, flags, tracking_token_hash, tracking_token_expires_at, created_at, updated_at, "
    "current_custody_id, alerts, eta_source, late_risk_explanation"
)
CUSTODY_COLUMNS = (
    "id, partner_reference, group_reference, started_at, ended_at, created_at, handed_off_by_id, "
    "shipment_id, partner_id"
)
NULL = "\\N"


def model_defaults(model: type[Model], listed: str) -> tuple[str, list[str]]:
    """Columns the loader does not list, filled with the model's defaults (so new fields do not break it)."""
    named = {name.strip() for name in listed.split(",")}
    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.column in named or field.primary_key:
            continue
        default = field.get_default()
        if isinstance(default, (list, dict)):
            value = json.dumps(default)
        elif isinstance(default, bool):
            value = "t" if default else "f"
        elif default is None:
            value = NULL
        else:
            value = str(default)
        columns.append(field.column)
        values.append(value)
    return "".join(f", {c}" for c in columns), values


EXTRA_SHIPMENT_COLUMNS, SHIPMENT_DEFAULTS = model_defaults(Shipment, SHIPMENT_COLUMNS)
SHIPMENT_COLUMNS += EXTRA_SHIPMENT_COLUMNS
EXTRA_EVENT_COLUMNS, EVENT_DEFAULTS = model_defaults(TrackingEvent, EVENT_COLUMNS)
EVENT_COLUMNS += EXTRA_EVENT_COLUMNS
EXTRA_CUSTODY_COLUMNS, CUSTODY_DEFAULTS = model_defaults(Custody, CUSTODY_COLUMNS)
CUSTODY_COLUMNS += EXTRA_CUSTODY_COLUMNS


def token_for(i: int) -> str:
    return f"bench-token-{i}"


def reference_for(i: int) -> str:
    return f"BENCH-{i:07d}"


def ts(moment: datetime) -> str:
    return moment.isoformat()


def journey(rng: random.Random) -> list[tuple[str, str]]:
    """Statuses (with a reason) in the order they happen, drawn from a plausible mix of outcomes."""
    steps = [("info_received", ""), ("assigned", ""), ("picked_up", ""), ("in_transit", "")]
    roll = rng.random()
    if roll < 0.05:  # still on its way
        return [*steps, ("out_for_delivery", "")][: rng.randint(2, 5)]
    steps.append(("out_for_delivery", ""))
    if roll < 0.13:  # a failed attempt, then a re-attempt
        steps += [("attempt_failed", "recipient_not_home"), ("out_for_delivery", "")]
    if roll < 0.16:
        return [*steps, ("attempt_failed", "refused"), ("returning", "refused"), ("returned", "refused")]
    if roll < 0.18:
        return [*steps[:3], ("cancelled", "cancelled_by_merchant")]
    if rng.random() < 0.4:
        steps.append(("arriving", ""))
    return [*steps, ("delivered", "")]


def pings(rng: random.Random, mean_extra: float) -> int:
    """Location pings while out for delivery: most shipments a few, one in a hundred a long trail."""
    if rng.random() < 0.01:
        return rng.randint(30, int(60 * mean_extra) + 30)
    return rng.randint(0, max(0, round(2 * mean_extra * 0.55)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shipments", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000, help="approximate total")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--force", action="store_true", help="allow a database without 'bench' in its name")
    args = parser.parse_args()

    name = connection.settings_dict["NAME"]
    if connection.vendor != "postgresql" or ("bench" not in name and not args.force):
        sys.exit(f"refusing to empty database {name!r}: use a PostgreSQL database named *bench*, or --force")

    started = time.monotonic()
    rng = random.Random(args.seed)

    # Per shipment: ~7 statuses, ~1 ETA, and location pings sized to reach the requested total.
    mean_extra = max(0.0, args.events / args.shipments - 7.2)
    now = datetime.now(UTC)
    window_start = now - timedelta(days=60)
    expires = ts(now + timedelta(days=90))
    shipment_rows: list[str] = []
    custody_rows: list[str] = []
    event_id = custody_id = 0
    total_events = 0

    # One transaction up to the rebuilt indexes: a failed load leaves the tables as they were.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute(
            "SET LOCAL session_replication_role = replica"
        )  # no FK triggers: consistent by construction
        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
        cursor.execute(
            f"TRUNCATE {', '.join(TABLES)}, partners_inboundmessage, partners_idempotencykey CASCADE"
        )
        Partner.objects.filter(slug__startswith="bench-").delete()
        partners = create_partners()
        fleets = [p for p, kind in partners if kind == "fleet"]
        others = [p for p, kind in partners if kind != "fleet"]
        dropped = drop_secondary_indexes(cursor)
        print(f"dropped {len(dropped)} secondary indexes; generating...", flush=True)
        raw = cursor.cursor if hasattr(cursor, "cursor") else cursor
        with raw.copy(f"COPY tracking_trackingevent ({EVENT_COLUMNS}) FROM STDIN") as copy:
            buffer: list[str] = []
            for i in range(1, args.shipments + 1):
                created = window_start + timedelta(seconds=rng.uniform(0, 59 * 86400))
                lat0, lng0 = rng.choice(CITIES)
                lat, lng = lat0 + rng.uniform(-0.05, 0.05), lng0 + rng.uniform(-0.05, 0.05)
                # Custody chain: the first holder, sometimes subcontracted once or twice.
                links = [rng.choice(fleets if rng.random() < 0.4 else others)]
                handoffs = 0 if rng.random() < 0.7 else (1 if rng.random() < 0.83 else 2)
                for _ in range(handoffs):
                    links.append(rng.choice([p for p in others if p != links[-1]]))
                statuses = journey(rng)
                n_pings = pings(rng, mean_extra)
                moment = created + timedelta(minutes=rng.randint(5, 120))
                # Hand-offs happen after pickup; every link of the chain reports at least one step.
                split = sorted(
                    rng.sample(range(3, len(statuses)), k=min(len(links) - 1, max(0, len(statuses) - 3)))
                )
                links = links[: len(split) + 1]
                link_of_step = [sum(1 for s in split if s <= k) for k in range(len(statuses))]
                custody_ids = list(range(custody_id + 1, custody_id + 1 + len(links)))
                custody_id += len(links)
                seq = 0
                last_status, last_reason, last_at, eta = "", "", moment, None
                link_started = [moment] + [None] * (len(links) - 1)
                link_ended: list[datetime | None] = [None] * len(links)
                for k, (status, reason) in enumerate(statuses):
                    moment += timedelta(minutes=rng.randint(3, 240) if k < 4 else rng.randint(2, 40))
                    link = link_of_step[k]
                    if link_started[link] is None:
                        link_started[link] = moment - timedelta(seconds=30)
                        link_ended[link - 1] = link_started[link]
                    event_id += 1
                    seq += 1
                    buffer.append(
                        event_line(
                            event_id,
                            i,
                            links[link],
                            custody_ids[link],
                            "status",
                            status,
                            reason,
                            moment,
                            None,
                            None,
                            None,
                            seq,
                        )
                    )
                    last_status, last_reason, last_at = status, reason, moment
                    if k == 2:  # an ETA once picked up
                        event_id += 1
                        seq += 1
                        eta = moment + timedelta(hours=rng.randint(1, 8))
                        buffer.append(
                            event_line(
                                event_id,
                                i,
                                links[link],
                                custody_ids[link],
                                "eta",
                                "",
                                "",
                                moment + timedelta(seconds=1),
                                None,
                                None,
                                eta,
                                seq,
                            )
                        )
                    if status == "out_for_delivery" and n_pings:
                        for _ in range(n_pings):
                            moment += timedelta(seconds=rng.randint(20, 90))
                            event_id += 1
                            seq += 1
                            buffer.append(
                                event_line(
                                    event_id,
                                    i,
                                    links[link],
                                    custody_ids[link],
                                    "location",
                                    "",
                                    "",
                                    moment,
                                    lat + rng.uniform(-0.02, 0.02),
                                    lng + rng.uniform(-0.02, 0.02),
                                    None,
                                    seq,
                                )
                            )
                        n_pings = 0
                total_events += seq
                for idx, partner_id in enumerate(links):
                    started_at = link_started[idx] or moment
                    ended_at = link_ended[idx]
                    custody_rows.append(
                        "\t".join(
                            [
                                str(custody_ids[idx]),
                                f"B{i}-{idx}",
                                "",
                                ts(started_at),
                                ts(ended_at) if ended_at else NULL,
                                ts(started_at),
                                str(custody_ids[idx - 1]) if idx else NULL,
                                str(i),
                                str(partner_id),
                                *CUSTODY_DEFAULTS,
                            ]
                        )
                    )
                postcode = rng.choice(POSTCODES)
                terminal = last_status in {"delivered", "returned", "cancelled"}
                shipment_rows.append(
                    "\t".join(
                        [
                            str(i),
                            reference_for(i),
                            f"Customer {i}",
                            f"customer{i}@example.com",
                            f"+44 7700 {i:07d}",
                            f"447700{i:07d}",
                            f"{i % 300 + 1} High Street, Somewhere",
                            postcode,
                            repr(lat),
                            repr(lng),
                            ts(created + timedelta(days=1)),
                            ts(created + timedelta(days=1, hours=4)),
                            last_status,
                            last_reason,
                            "",
                            ts(last_at),
                            NULL if terminal or eta is None else ts(eta),
                            ts(moment),
                            '{"signed_by": "A. Customer"}' if last_status == "delivered" else NULL,
                            "[]",
                            hashlib.sha256(token_for(i).encode()).hexdigest(),
                            expires,
                            ts(created),
                            ts(moment),
                            str(custody_ids[-1]),
                            "[]",  # alerts: the sweep's flags, none yet
                            "",
                            "",
                            *SHIPMENT_DEFAULTS,
                        ]
                    )
                )
                if len(buffer) >= 20000:
                    copy.write("\n".join(buffer) + "\n")
                    buffer.clear()
                if i % 100_000 == 0:
                    print(
                        f"  {i:,} shipments, {total_events:,} events, {time.monotonic() - started:.0f}s",
                        flush=True,
                    )
            if buffer:
                copy.write("\n".join(buffer) + "\n")
        with raw.copy(f"COPY partners_custody ({CUSTODY_COLUMNS}) FROM STDIN") as copy:
            for start in range(0, len(custody_rows), 50000):
                copy.write("\n".join(custody_rows[start : start + 50000]) + "\n")
        with raw.copy(f"COPY tracking_shipment ({SHIPMENT_COLUMNS}) FROM STDIN") as copy:
            for start in range(0, len(shipment_rows), 50000):
                copy.write("\n".join(shipment_rows[start : start + 50000]) + "\n")
        loaded = time.monotonic() - started
        print(
            f"copied {total_events:,} events, {len(custody_rows):,} custody links, "
            f"{len(shipment_rows):,} shipments in {loaded:.0f}s; rebuilding indexes...",
            flush=True,
        )
        for statement in dropped:
            cursor.execute(statement)
        for table in TABLES:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
    indexed = time.monotonic() - started
    print(f"indexes rebuilt at {indexed:.0f}s; analyzing...", flush=True)
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(
        f"done: {args.shipments:,} shipments, {total_events:,} events, {len(custody_rows):,} custody links "
        f"in {time.monotonic() - started:.0f}s (copy {loaded:.0f}s, indexes {indexed - loaded:.0f}s)"
    )


def create_partners() -> list[tuple[int, str]]:
    partners: list[tuple[int, str]] = []
    for kind, count in PARTNERS:
        for n in range(count):
            partner = Partner(
                slug=f"bench-{kind}-{n}", name=f"Bench {kind.title()} {n}", kind=kind, adapter="native"
            )
            partner.rotate_api_key()
            partner.save()
            partners.append((partner.pk, kind))
    return partners


def event_line(
    event_id: int,
    shipment_id: int,
    partner_id: int,
    custody_id: int,
    kind: str,
    status: str,
    reason: str,
    occurred: datetime,
    lat: float | None,
    lng: float | None,
    eta: datetime | None,
    seq: int,
) -> str:
    received = occurred + timedelta(seconds=seq % 7 + 1)
    at = ts(occurred)
    return "\t".join(
        [
            str(event_id),
            str(shipment_id),
            str(partner_id),
            str(custody_id),
            NULL,
            kind,
            status,
            reason,
            "",
            status or kind,
            at,
            ts(received),
            at,
            NULL if lat is None else repr(lat),
            NULL if lng is None else repr(lng),
            NULL if eta is None else ts(eta),
            NULL,
            "",
            "{}",
            f"e{event_id}",
            hashlib.sha256(b"%d:%d" % (shipment_id, event_id)).hexdigest(),
            str(seq),
            "t",
            "[]",
            *EVENT_DEFAULTS,
        ]
    )


def drop_secondary_indexes(cursor) -> list[str]:
    """Drop every index but the primary keys of the loaded tables; return the statements to rebuild them."""
    rebuild: list[str] = []
    for table in TABLES:
        cursor.execute(
            """
            SELECT con.conname, pg_get_constraintdef(con.oid)
            FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid
            WHERE t.relname = %s AND con.contype = 'u'
            """,
            [table],
        )
        for name, definition in cursor.fetchall():
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            rebuild.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        cursor.execute(
            """
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
            FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
            WHERE t.relname = %s AND NOT i.indisprimary
            """,
            [table],
        )
        for name, definition in cursor.fetchall():
            cursor.execute(f"DROP INDEX {name}")
            rebuild.append(definition)
    return rebuild


if __name__ == "__main__":
    main()
