"""Seed the rules a fresh install acts by (docs/flags.md), and let operations edit rules and thresholds."""

from django.db import migrations

from contactcentre.roles import grant_role_permissions


def seed(apps, schema_editor):
    from contactcentre.proactive import DEFAULT_RULES

    ActionRule = apps.get_model("contactcentre", "ActionRule")
    for name, flag, action in DEFAULT_RULES:
        if not ActionRule.objects.filter(flag=flag, action=action, partner_kind="").exists():
            ActionRule.objects.get_or_create(name=name, defaults={"flag": flag, "action": action})
    # The operations role gains the admin's rules and silence thresholds.
    grant_role_permissions(apps)


def unseed(apps, schema_editor):
    from contactcentre.proactive import DEFAULT_RULES

    ActionRule = apps.get_model("contactcentre", "ActionRule")
    ActionRule.objects.filter(name__in=[name for name, _flag, _action in DEFAULT_RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("contactcentre", "0006_rule_choices_and_episode_flag"),
        ("partners", "0012_default_silence_thresholds"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
