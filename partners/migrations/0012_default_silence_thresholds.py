"""Starting thresholds operations can edit in the admin (issue 12's examples), per partner kind."""

from django.db import migrations

# (partner kind, status, minutes); status "" = any status, "unacknowledged" = never reported.
DEFAULTS = [
    ("", "unacknowledged", 120),
    ("", "", 120),
    ("fleet", "", 120),
    ("fleet", "out_for_delivery", 60),
    ("fleet", "arriving", 30),
    ("subcontractor", "", 120),
    ("subcontractor", "out_for_delivery", 45),
    ("subcontractor", "arriving", 30),
    ("carrier", "", 26 * 60),
    ("carrier", "in_transit", 26 * 60),
    ("carrier", "out_for_delivery", 6 * 60),
    ("carrier", "unacknowledged", 24 * 60),
]


def seed(apps, schema_editor):
    SilenceThreshold = apps.get_model("partners", "SilenceThreshold")
    for kind, status, minutes in DEFAULTS:
        SilenceThreshold.objects.get_or_create(
            partner=None, partner_kind=kind, status=status, defaults={"minutes": minutes}
        )


def unseed(apps, schema_editor):
    SilenceThreshold = apps.get_model("partners", "SilenceThreshold")
    for kind, status, _minutes in DEFAULTS:
        SilenceThreshold.objects.filter(partner=None, partner_kind=kind, status=status).delete()


class Migration(migrations.Migration):
    dependencies = [("partners", "0011_silence_thresholds_stage_durations")]
    operations = [migrations.RunPython(seed, unseed)]
