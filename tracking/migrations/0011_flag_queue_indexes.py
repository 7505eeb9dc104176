"""PostgreSQL only: one partial index per flag queue of the console, in the queue's order.

A queue lists the most urgent 50 of its shipments and counts up to 1,001; with an index whose
predicate is the queue's own condition and whose columns are its order, PostgreSQL walks the index
and stops, instead of fetching every flagged shipment and sorting them. The predicates repeat
`contactcentre.queues.shipments` exactly (PostgreSQL uses a partial index only when it can prove
the query implies the predicate); tests/contactcentre/test_queue_indexes.py checks the plans.
"""

from django.db import migrations

OPEN = "status::text <> ALL ('{cancelled,delivered,returned}'::text[])"


def carrying(*codes: str) -> str:
    arms = [f"""{column} @> '["{code}"]'::jsonb""" for code in codes for column in ("flags", "alerts")]
    return f"({' OR '.join(arms)})"


INDEXES = {
    "shipment_queue_blind_spots": (
        "last_event_at, promised_until, id",
        carrying("stale_custodian", "unacknowledged"),
    ),
    "shipment_queue_late_risk": ("late_risk DESC, promised_until, id", carrying("late_risk")),
    "shipment_queue_eta_passed": ("eta, promised_until, id", carrying("eta_passed")),
    "shipment_queue_conflicts": ("promised_until, id", carrying("conflict", "far_from_destination")),
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, (columns, condition) in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON tracking_shipment ({columns}) WHERE {OPEN} AND {condition}"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("tracking", "0010_flag_gin_indexes")]
    operations = [migrations.RunPython(create, drop)]
