from typing import Any

from django.db import migrations, models


def close_custody_of_ended_jobs(apps: Any, schema_editor: Any) -> None:
    """A job that has ended is no longer held: close its open custody when it ended."""
    custody = apps.get_model("partners", "Custody")
    ended = custody.objects.filter(
        ended_at__isnull=True,
        shipment__status__in=["delivered", "returned", "cancelled"],
        shipment__status_at__isnull=False,
    ).select_related("shipment")
    rows = []
    for link in ended.iterator(chunk_size=2000):
        link.ended_at = max(link.started_at, link.shipment.status_at)
        rows.append(link)
    custody.objects.bulk_update(rows, ["ended_at"], batch_size=2000)


class Migration(migrations.Migration):
    dependencies = [
        ("partners", "0008_inbound_retry_backoff"),
        ("tracking", "0007_event_timed"),
    ]

    operations = [
        migrations.AddField(
            model_name="custody",
            name="vehicle_reference",
            field=models.CharField(
                blank=True,
                db_index=True,
                help_text="The partner's id of the vehicle the job rides on.",
                max_length=128,
            ),
        ),
        migrations.RunPython(close_custody_of_ended_jobs, migrations.RunPython.noop),
    ]
