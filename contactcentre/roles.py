"""The console's roles: Django groups and the permissions each carries."""

from __future__ import annotations

from typing import Any

AGENT = "agent"
SUPERVISOR = "supervisor"
OPERATIONS = "operations"

# Permission codenames per role ("app_label.codename"); supervisors can do all an agent can.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    AGENT: [
        "contactcentre.use_console",
        "contactcentre.view_case",
        "contactcentre.add_case",
        "contactcentre.change_case",
        "contactcentre.add_casenote",
    ],
    SUPERVISOR: [
        "contactcentre.use_console",
        "contactcentre.view_case",
        "contactcentre.add_case",
        "contactcentre.change_case",
        "contactcentre.add_casenote",
        "contactcentre.supervise",
    ],
    OPERATIONS: [
        "contactcentre.use_console",
        "contactcentre.view_case",
        "contactcentre.operate",
        # The admin's rules and thresholds (docs/flags.md); an operations user also needs staff status.
        "contactcentre.view_actionrule",
        "contactcentre.add_actionrule",
        "contactcentre.change_actionrule",
        "contactcentre.delete_actionrule",
        "contactcentre.view_proactiveaction",
        "partners.view_silencethreshold",
        "partners.add_silencethreshold",
        "partners.change_silencethreshold",
        "partners.delete_silencethreshold",
    ],
}


def grant_role_permissions(apps: Any) -> None:
    """Make each role's group and give it its permissions (those that exist at this migration)."""
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after migrations; make sure they exist for the groups.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, names in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        for name in names:
            app_label, codename = name.split(".")
            permission = permission_model.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission is not None:  # a model a later migration adds: that migration grants it
                group.permissions.add(permission)
