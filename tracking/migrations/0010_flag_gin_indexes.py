"""PostgreSQL only: GIN indexes so the console's flag queues and `?flag=` find the few flagged shipments.

`Shipment.objects.carrying(code)` asks `flags @> '["code"]' OR alerts @> '["code"]'`; with these the
planner ORs two small index scans instead of reading every open shipment. SQLite (the development
default) has no GIN and no containment operator, so nothing is created there.
"""

from django.db import migrations

INDEXES = {
    "shipment_flags_gin": "flags",
    "shipment_alerts_gin": "alerts",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, column in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON tracking_shipment USING gin ({column} jsonb_path_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("tracking", "0009_shipment_alerted_index")]
    operations = [migrations.RunPython(create, drop)]
