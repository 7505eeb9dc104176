"""The console's roles: Django groups and the permissions each carries."""

from __future__ import annotations

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
    ],
}
