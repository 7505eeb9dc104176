"""Every console page and action against every role: anonymous, no role, agent, supervisor, operations.

What each role may do is written out here, independently of the code under test; an action that is
refused must leave no trace (no audit event, no timeline entry, no message, no custody change).
"""

import pytest
from django.utils import timezone

from contactcentre import roles, services
from contactcentre.models import Case, CaseEvent, CaseNote
from partners.models import Custody, InboundMessage
from tests.factories import PartnerFactory, give_role
from tracking.models import Activity, OutboundMessage, TrackingEvent

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "no role", roles.AGENT, roles.SUPERVISOR, roles.OPERATIONS]
CONSOLE = {roles.AGENT, roles.SUPERVISOR, roles.OPERATIONS}
CASEWORK = {roles.AGENT, roles.SUPERVISOR}
OPS = {roles.OPERATIONS}

PAGES = ["/console/", "/console/find/?search=ORD-1", "/console/shipments/ORD-1/", "/console/cases/{open}/"]

# action -> (url, form data, roles allowed)
ACTIONS = {
    "open case": ("/console/shipments/ORD-1/cases/", {"channel": "phone", "reason": "late"}, CASEWORK),
    "take ownership": ("/console/cases/{open}/take/", {}, CASEWORK),
    "hand over": ("/console/cases/{open}/hand-over/", {"to": "colleague"}, CASEWORK),
    "escalate": ("/console/cases/{open}/escalate/", {}, CASEWORK),
    "set status": ("/console/cases/{open}/status/", {"status": "waiting_on_customer"}, CASEWORK),
    "resolve": ("/console/cases/{open}/resolve/", {"resolution": "informed"}, CASEWORK),
    "reopen": ("/console/cases/{resolved}/reopen/", {}, CASEWORK),
    "add note": ("/console/cases/{open}/note/", {"body": "called"}, CASEWORK),
    "chase": ("/console/shipments/ORD-1/actions/chase/", {"case": "{open}"}, CASEWORK),
    "instruction": ("/console/shipments/ORD-1/actions/instruction/", {"text": "side door"}, CASEWORK),
    "resend link": ("/console/shipments/ORD-1/actions/link/", {"channel": "email"}, CASEWORK),
    "message": ("/console/shipments/ORD-1/actions/message/", {"channel": "sms", "body": "hi"}, CASEWORK),
    "reassign": (
        "/console/shipments/ORD-1/actions/reassign/",
        {"partner": "fleet", "partner_reference": "F-9"},
        OPS,
    ),
    "replay": ("/console/unmatched/replay/", {}, OPS),
}


@pytest.fixture
def world(held_shipment, make_user):
    colleague = make_user("colleague", roles.AGENT)
    opener = make_user("opener", roles.AGENT)
    PartnerFactory(slug="fleet")
    open_case = services.open_case(
        held_shipment, channel="phone", reason="late", opened_by=opener, owner=opener
    )
    resolved = services.open_case(held_shipment, channel="phone", reason="late", opened_by=opener)
    services.resolve_case(resolved, resolution=Case.Resolution.INFORMED, by=opener)
    return {"open": open_case.pk, "resolved": resolved.pk, "colleague": colleague}


def login_as(client, who, make_user):
    if who == "anonymous":
        return
    user = make_user(f"user-{who.replace(' ', '-')}")
    if who != "no role":
        give_role(user, who)
    client.force_login(user)


def trace():
    return (
        CaseEvent.objects.count(),
        CaseNote.objects.count(),
        Case.objects.count(),
        Activity.objects.count(),
        OutboundMessage.objects.count(),
        Custody.objects.count(),
        list(Case.objects.order_by("pk").values_list("status", "owner", "escalated")),
    )


@pytest.mark.parametrize("who", ROLES)
@pytest.mark.parametrize("page", PAGES)
def test_every_page_needs_login_and_the_console_permission(client, world, make_user, who, page):
    login_as(client, who, make_user)
    response = client.get(page.format(**world))
    if who == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
    elif who in CONSOLE:
        assert response.status_code == 200
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("who", ROLES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_is_done_only_by_the_roles_allowed(client, world, make_user, who, action):
    url, data, allowed = ACTIONS[action]
    login_as(client, who, make_user)
    before = trace()

    response = client.post(url.format(**world), {k: v.format(**world) for k, v in data.items()})

    if who == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    elif who in allowed:
        assert response.status_code == 302
        assert not response["Location"].startswith("/accounts/")
        if action != "replay":  # nothing to replay in this world; the page says "0 messages"
            assert trace() != before, f"{who} {action} changed nothing"
        return
    else:
        assert response.status_code == 403
    assert trace() == before


@pytest.mark.parametrize("action", ["open case", "add note", "chase"])
def test_an_action_cannot_be_triggered_by_get(client, world, make_user, action):
    login_as(client, roles.AGENT, make_user)
    before = trace()
    assert client.get(ACTIONS[action][0].format(**world)).status_code == 405
    assert trace() == before


def test_only_operations_see_raw_inbound_messages_and_the_reassign_form(
    client, world, make_user, held_shipment
):
    partner = held_shipment.current_custody.partner
    message = InboundMessage.objects.create(
        partner=partner,
        channel="api",
        body=b'{"secret_marker": 1}',
        content_hash="h",
        received_at=timezone.now(),
    )
    TrackingEvent.objects.create(
        shipment=held_shipment,
        partner=partner,
        message=message,
        kind="status",
        status="in_transit",
        occurred_at=timezone.now(),
        received_at=timezone.now(),
        dedupe_key="k1",
    )
    login_as(client, roles.AGENT, make_user)
    page = client.get("/console/shipments/ORD-1/").content
    assert b"secret_marker" not in page
    assert b"Reassign to another partner" not in page
    client.logout()
    login_as(client, roles.OPERATIONS, make_user)
    page = client.get("/console/shipments/ORD-1/").content
    assert b"secret_marker" in page
    assert b"Reassign to another partner" in page
    assert b"Chase the holder" not in page
