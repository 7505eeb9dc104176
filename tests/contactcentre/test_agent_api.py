"""The agent API does what the console does: cases, notes, actions, queues, caller lookup."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from contactcentre import services
from contactcentre.models import Case, CaseEvent
from tests.factories import PartnerFactory, ShipmentFactory
from tracking.models import Activity

pytestmark = pytest.mark.django_db


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_a_helpdesk_opens_works_and_resolves_a_case_through_the_api(agent, other_agent, held_shipment):
    client = api(agent)
    created = client.post(
        "/api/v1/cases",
        {"shipment": "ORD-1", "channel": "chat", "reason": "where_is_my_order", "contact_name": "Ann"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    case_id = created.json()["id"]
    assert created.json()["owner"] == "alice"

    note = client.post(f"/api/v1/cases/{case_id}/notes", {"body": "Asked the courier"}, format="json")
    assert note.status_code == 201
    chase = client.post(
        "/api/v1/shipments/ORD-1/actions", {"action": "chase", "case": case_id}, format="json"
    )
    assert chase.status_code == 201, chase.json()
    assert chase.json()["kind"] == "chase"
    assert chase.json()["case"] == case_id
    assert chase.json()["outcome"] in {"pending", "sent"}
    handed = client.post(
        f"/api/v1/cases/{case_id}/actions", {"action": "hand_over", "to": "bob"}, format="json"
    )
    assert handed.json()["owner"] == "bob"
    resolved = api(other_agent).post(
        f"/api/v1/cases/{case_id}/actions", {"action": "resolve", "resolution": "informed"}, format="json"
    )
    assert resolved.status_code == 200
    body = resolved.json()
    assert body["status"] == "resolved"
    assert [e["action"] for e in body["history"]] == [
        "opened",
        "assigned",
        "note",
        "action",
        "handed_over",
        "resolved",
    ]
    assert body["notes"][0]["body"] == "Asked the courier"


def test_an_action_the_case_state_forbids_is_a_409_with_words(agent, held_shipment):
    case = services.open_case(held_shipment, channel="phone", reason="late", opened_by=agent)
    services.resolve_case(case, resolution="informed", by=agent)

    response = api(agent).post(f"/api/v1/cases/{case.pk}/actions", {"action": "escalate"}, format="json")

    assert response.status_code == 409
    assert response.json() == {"error": "conflict", "message": "This case is resolved; reopen it first."}


def test_missing_fields_for_an_action_are_named(agent, held_shipment):
    case = services.open_case(held_shipment, channel="phone", reason="late", opened_by=agent)
    response = api(agent).post(f"/api/v1/cases/{case.pk}/actions", {"action": "resolve"}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {"resolution": ["Required for resolve."]}
    response = api(agent).post("/api/v1/shipments/ORD-1/actions", {"action": "reschedule"}, format="json")
    assert response.json()["fields"] == {"text": ["Required for reschedule."]}


def test_patch_corrects_a_case_and_the_audit_keeps_the_old_value(agent, held_shipment):
    case = services.open_case(held_shipment, channel="phone", reason="late", opened_by=agent)
    response = api(agent).patch(f"/api/v1/cases/{case.pk}", {"reason": "damaged"}, format="json")
    assert response.json()["reason"] == "damaged"
    event = CaseEvent.objects.get(case=case, action="updated")
    assert event.details == {"before": {"reason": "late"}, "after": {"reason": "damaged"}}


def test_cases_cannot_be_deleted(agent, supervisor, held_shipment):
    case = services.open_case(held_shipment, channel="phone", reason="late", opened_by=agent)
    assert api(supervisor).delete(f"/api/v1/cases/{case.pk}").status_code == 405
    assert Case.objects.filter(pk=case.pk).exists()


def test_lookup_by_phone_returns_the_callers_open_shipments_and_cases(agent, held_shipment):
    case = services.open_case(held_shipment, channel="phone", reason="late", opened_by=agent)
    ShipmentFactory(reference="DONE", customer_phone="07700 900123", status="delivered")
    ShipmentFactory(reference="OTHER", customer_phone="07700 900999")

    response = api(agent).get("/api/v1/lookup", {"phone": "07700 900123"})

    assert response.status_code == 200
    assert [s["reference"] for s in response.json()["shipments"]] == ["ORD-1"]
    assert [c["id"] for c in response.json()["cases"]] == [case.pk]
    assert api(agent).get("/api/v1/lookup", {"phone": "12"}).status_code == 400


def test_queues_list_counts_and_items_in_words(agent, held_shipment):
    held_shipment.alerts = ["stale_custodian"]
    held_shipment.save()
    services.open_case(
        held_shipment,
        channel="phone",
        reason="late",
        opened_by=agent,
        sla_due_at=timezone.now() - timedelta(minutes=5),
    )
    listed = {q["slug"]: q["count"] for q in api(agent).get("/api/v1/queues").json()}
    assert listed["blind_spots"] == 1
    assert listed["past_sla"] == 1
    assert "unmatched" not in listed

    blind = api(agent).get("/api/v1/queues/blind_spots").json()
    assert blind["shipments"][0]["flags"] == [
        {
            "code": "stale_custodian",
            "label": "Holder silent",
            "explanation": "The partner holding the job has been silent longer than expected.",
        }
    ]
    assert api(agent).get("/api/v1/queues/unmatched").status_code == 404
    assert api(agent).get("/api/v1/queues/blind_spots?offset=x").status_code == 400


@pytest.mark.parametrize(
    ("who", "expected"),
    [("anonymous", 401), ("no role", 403), ("agent", 201), ("supervisor", 201), ("operations", 403)],
)
def test_api_chase_permissions(who, expected, make_user, held_shipment):
    user = None if who == "anonymous" else make_user(f"u-{who}", None if who == "no role" else who)
    response = api(user).post("/api/v1/shipments/ORD-1/actions", {"action": "chase"}, format="json")
    assert response.status_code == expected
    assert Activity.objects.filter(kind="chase").exists() == (expected == 201)


@pytest.mark.parametrize(
    ("who", "expected"),
    [("anonymous", 401), ("no role", 403), ("agent", 403), ("supervisor", 403), ("operations", 201)],
)
def test_api_reassign_and_replay_are_for_operations(who, expected, make_user, held_shipment):
    PartnerFactory(slug="fleet")
    user = None if who == "anonymous" else make_user(f"u-{who}", None if who == "no role" else who)
    response = api(user).post(
        "/api/v1/shipments/ORD-1/actions",
        {"action": "reassign", "partner": "fleet", "partner_reference": "F-2"},
        format="json",
    )
    assert response.status_code == expected
    replay = api(user).post("/api/v1/unmatched/replay", {}, format="json")
    assert replay.status_code == (200 if expected == 201 else expected)


@pytest.mark.parametrize(
    ("who", "expected"),
    [("anonymous", 401), ("no role", 403), ("agent", 201), ("supervisor", 201), ("operations", 403)],
)
def test_api_case_creation_permissions(who, expected, make_user, held_shipment):
    user = None if who == "anonymous" else make_user(f"u-{who}", None if who == "no role" else who)
    response = api(user).post(
        "/api/v1/cases", {"shipment": "ORD-1", "channel": "phone", "reason": "late"}, format="json"
    )
    assert response.status_code == expected
    assert Case.objects.exists() == (expected == 201)
