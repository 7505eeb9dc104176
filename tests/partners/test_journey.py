"""One delivery told through three partners at once: the retailer's fleet, Onfleet, then Gophr.

The fleet reports through Baton's native API and hands the job to an Onfleet courier company, which
later subcontracts it to Gophr; each speaks its own format (recorded samples, plus composed ones signed
with the vendor's scheme). The agent must see one timeline with the right custody chain.
"""

import io
import json
from datetime import datetime

import pytest
from django.core.management import call_command

from partners.models import InboundMessage, Partner
from tests.conftest import wait_for
from tests.partners.samples import body_of, create_partner, samples, sent_at, sign

pytestmark = pytest.mark.django_db(transaction=True)

REFERENCE = "ORD-LDN-10482"  # the merchant reference the Onfleet samples carry in their metadata
ONFLEET_TASK = "tK9x~Fb3Lq7Rm2Wz8Pc4Nv1S"
GOPHR_JOB = "5b8e2f41-9c7a-4d13-a0e6-2f71c94b8d05"
FLEET_HANDOFF = "2025-06-12T10:35:00Z"  # before the Onfleet task was created (10:40:05)
ONFLEET_HANDOFF = "2025-06-12T12:30:00Z"  # after its courier's arrival (11:14:40), before Gophr's NEW


def at(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def late_onfleet_failure() -> bytes:
    """Onfleet's recorded taskFailed, as if its courier reported it after the job went to Gophr."""
    payload = json.loads(body_of("onfleet", "extra/07_taskFailed.json"))
    payload["time"] = at("2025-06-12T12:50:00Z")
    payload["data"]["task"]["completionDetails"]["time"] = at("2025-06-12T12:49:58Z")
    return json.dumps(payload, indent=2).encode()


class TestClientHttp:
    __test__ = False  # a helper, not a test class

    def __init__(self, client):
        self.client = client

    def post(self, path, body, headers):
        headers = dict(headers)
        content_type = headers.pop("Content-Type", "application/json")
        with sent_at(headers):
            response = self.client.post(path, data=body, content_type=content_type, headers=headers)
        return response.status_code, response.json()


def all_processed() -> bool:
    return not InboundMessage.objects.filter(state=InboundMessage.State.RECEIVED).exists()


def tell_the_journey(http, settle, agent_client):
    out = io.StringIO()
    call_command("partner_create", "northside-fleet", adapter="native", kind="fleet", stdout=out)
    fleet_key = json.loads(out.getvalue())["api_key"]
    onfleet = create_partner("onfleet", slug="onfleet-ldn")
    gophr = create_partner("gophr", slug="gophr-ldn")
    created = agent_client.post(
        "/api/v1/shipments",
        {
            "reference": REFERENCE,
            "customer_name": "Priya Shah",
            "address": "27 Old Gloucester Street, London",
            "postcode": "WC1N 3AX",
            "latitude": 51.5203,
            "longitude": -0.1222,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    assigned = agent_client.post(
        f"/api/v1/shipments/{REFERENCE}/assignments",
        {"partner": "northside-fleet", "partner_reference": "NSF-5531", "started_at": "2025-06-12T07:30:00Z"},
        format="json",
    )
    assert assigned.status_code == 201, assigned.json()

    def native(path, payload, key):
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        code, answer = http.post(f"/api/partner/v1/{path}", body, headers)
        settle()
        return code, answer

    def webhook(partner, body, headers):
        code, answer = http.post(f"/webhooks/{partner.adapter}/{partner.slug}/", body, headers)
        assert code == 200, answer
        settle()

    # 1. The retailer's own fleet collects the parcel, then hands it to the Onfleet courier company.
    fleet_events = [
        {
            "reference": "NSF-5531",
            "event_id": "n1",
            "status": "picked_up",
            "occurred_at": "2025-06-12T08:05:00Z",
        },
        {
            "reference": "NSF-5531",
            "event_id": "n2",
            "status": "in_transit",
            "occurred_at": "2025-06-12T09:10:00Z",
        },
    ]
    assert native("events", {"events": fleet_events}, fleet_key)[0] == 202
    handoff = {"reference": "NSF-5531", "to_partner": "onfleet-ldn", "to_reference": ONFLEET_TASK}
    assert native("handoffs", {**handoff, "occurred_at": FLEET_HANDOFF}, fleet_key)[0] == 201
    assert native("handoffs/confirm", {"reference": ONFLEET_TASK}, onfleet.api_key)[0] == 200

    # 2. Onfleet's webhooks, exactly as recorded; the fleet's driver still claims a delivery afterwards.
    for entry in samples("onfleet"):
        webhook(onfleet, body_of("onfleet", entry["file"]), entry["headers"])
    stray = {
        "reference": "NSF-5531",
        "event_id": "n3",
        "status": "delivered",
        "occurred_at": "2025-06-12T11:00:00Z",
    }
    assert native("events", stray, fleet_key)[0] == 202

    # 3. Onfleet subcontracts the job to Gophr; its own courier's late failure report must not count.
    handoff = {"reference": ONFLEET_TASK, "to_partner": "gophr-ldn", "to_reference": GOPHR_JOB}
    assert native("handoffs", {**handoff, "occurred_at": ONFLEET_HANDOFF}, onfleet.api_key)[0] == 201
    assert native("handoffs/confirm", {"reference": GOPHR_JOB}, gophr.api_key)[0] == 200
    for entry in samples("gophr"):
        webhook(gophr, body_of("gophr", entry["file"]), entry["headers"])
    late = late_onfleet_failure()
    webhook(onfleet, late, sign("onfleet", late))
    delivered = body_of("gophr", "extra/status_DELIVERED.json")
    webhook(gophr, delivered, sign("gophr", delivered))

    return Partner.objects.get(slug="northside-fleet"), onfleet, gophr


def check_the_timeline(agent_client):
    detail = agent_client.get(f"/api/v1/shipments/{REFERENCE}").json()
    chain = [(c["partner"], c["partner_reference"], c["is_current"]) for c in detail["custody_chain"]]
    assert chain == [
        ("northside-fleet", "NSF-5531", False),
        ("onfleet-ldn", ONFLEET_TASK, False),
        ("gophr-ldn", GOPHR_JOB, False),  # its custody closed with the delivery
    ]
    fleet_link, onfleet_link, gophr_link = detail["custody_chain"]
    assert fleet_link["handed_off_by"] is None
    assert onfleet_link["handed_off_by"] == fleet_link["id"]
    assert gophr_link["handed_off_by"] == onfleet_link["id"]
    assert (fleet_link["ended_at"], onfleet_link["ended_at"]) == (
        "2025-06-12T11:35:00+01:00",
        "2025-06-12T13:30:00+01:00",
    )
    assert gophr_link["ended_at"] is not None
    assert (detail["status"], detail["current_partner"]) == ("delivered", "gophr-ldn")

    timeline = agent_client.get(f"/api/v1/shipments/{REFERENCE}/timeline").json()
    entries = timeline["entries"]
    assert [e["sequence"] for e in entries] == list(range(1, len(entries) + 1))
    assert [e["occurred_at"] for e in entries] == sorted(e["occurred_at"] for e in entries)
    applied_statuses = [
        (e["source"]["partner"], e["custodian"]["partner"], e["status"])
        for e in entries
        if e["kind"] == "status" and e["applied"]
    ]
    assert applied_statuses == [
        ("northside-fleet", "northside-fleet", "picked_up"),
        ("northside-fleet", "northside-fleet", "in_transit"),
        ("onfleet-ldn", "onfleet-ldn", "info_received"),
        ("onfleet-ldn", "onfleet-ldn", "assigned"),
        ("onfleet-ldn", "onfleet-ldn", "out_for_delivery"),
        ("onfleet-ldn", "onfleet-ldn", "arriving"),
        ("gophr-ldn", "gophr-ldn", "info_received"),
        ("gophr-ldn", "gophr-ldn", "info_received"),
        ("gophr-ldn", "gophr-ldn", "assigned"),
        ("gophr-ldn", "gophr-ldn", "assigned"),
        ("gophr-ldn", "gophr-ldn", "out_for_delivery"),
        ("gophr-ldn", "gophr-ldn", "arriving"),
        ("gophr-ldn", "gophr-ldn", "delivered"),
    ]
    not_applied = [
        (e["source"]["partner"], e["custodian"]["partner"], e["status"], e["flags"])
        for e in entries
        if not e["applied"]
    ]
    assert not_applied == [
        ("northside-fleet", "onfleet-ldn", "delivered", ["former_custodian"]),
        ("onfleet-ldn", "gophr-ldn", "attempt_failed", ["former_custodian"]),
    ]
    handoffs = [
        (e["source"]["partner"], e["details"]["to_partner"]) for e in entries if e["kind"] == "handoff"
    ]
    assert handoffs == [("northside-fleet", "onfleet-ldn"), ("onfleet-ldn", "gophr-ldn")]
    channels = {(e["source"]["partner"], e["source"]["channel"]) for e in entries}
    assert channels == {
        ("northside-fleet", "api"),
        ("northside-fleet", "handoff"),
        ("onfleet-ldn", "webhook"),
        ("onfleet-ldn", "handoff"),
        ("gophr-ldn", "webhook"),
    }
    assert "former_custodian" in timeline["flags"]
    assert timeline["status"] == "delivered"


def test_fleet_to_onfleet_to_gophr_gives_one_timeline_with_the_custody_chain(client, agent_client):
    tell_the_journey(TestClientHttp(client), lambda: None, agent_client)

    check_the_timeline(agent_client)
    assert all_processed()


@pytest.mark.live
def test_the_three_vendor_journey_through_a_live_worker(live_worker, live_server, agent_client):
    import requests

    class LiveHttp:
        def post(self, path, body, headers):
            with sent_at(headers):
                response = requests.post(f"{live_server.url}{path}", data=body, headers=headers, timeout=10)
            return response.status_code, response.json()

    tell_the_journey(LiveHttp(), lambda: wait_for(all_processed), agent_client)

    check_the_timeline(agent_client)


def test_a_former_custodian_cannot_hand_the_job_on_again(client, agent_client):
    fleet, onfleet, _gophr = tell_the_journey(TestClientHttp(client), lambda: None, agent_client)
    again = {"reference": ONFLEET_TASK, "to_partner": "northside-fleet", "to_reference": "NSF-5531-B"}

    response = client.post(
        "/api/partner/v1/handoffs",
        data=json.dumps(again),
        content_type="application/json",
        headers={"Authorization": f"Bearer {onfleet.api_key}"},
    )

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert fleet.custodies.count() == 1
