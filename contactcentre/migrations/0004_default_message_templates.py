"""Seed one editable template per customer message type with Baton's built-in words."""

from django.db import migrations


def seed(apps, schema_editor):
    from contactcentre.notifications import DEFAULT_TEMPLATES

    MessageTemplate = apps.get_model("contactcentre", "MessageTemplate")
    for purpose, words in DEFAULT_TEMPLATES.items():
        MessageTemplate.objects.get_or_create(purpose=purpose, defaults=words)


class Migration(migrations.Migration):
    dependencies = [("contactcentre", "0003_subscriptions_and_message_templates")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
