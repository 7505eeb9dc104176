"""The examples a reader copies from the docs work on the day they are read."""

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.factories import CustodyFactory, PartnerFactory

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "docs" / "partners.md").read_text()
SHELL_BLOCKS = [
    block
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for block in re.findall(r"```(?:sh|bash|shell)\n(.*?)```", path.read_text(), flags=re.S)
]


def curl_body(url_part: str, **shell: str) -> dict:
    """The JSON a guide's curl example sends to `url_part`, with its shell variables filled in."""
    block = next(b for b in SHELL_BLOCKS if f"curl -sS https://track.example.com{url_part}" in b)
    body = re.search(r"-d '(\{.*?\})'\n", block, flags=re.S)[1]
    for name, value in shell.items():
        body = body.replace(f"'\"${name}\"'", value)
    return json.loads(body)


def test_no_shell_example_carries_a_literal_date():
    dated = [
        line for block in SHELL_BLOCKS for line in block.splitlines() if re.search(r"\d{4}-\d\d-\d\dT", line)
    ]

    assert dated == []


@pytest.mark.django_db(transaction=True)
def test_the_events_example_is_accepted_and_applied_as_it_is(partner_client, agent_client):
    custody = CustodyFactory(partner_reference="SWIFT-77")
    now = datetime.now(UTC)
    body = curl_body(
        "/api/partner/v1/events",
        NOW=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ETA=(now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )

    response = partner_client(custody.partner).post("/api/partner/v1/events", body, format="json")

    assert response.status_code == 202, response.content
    [entry] = agent_client.get(f"/api/v1/shipments/{custody.shipment.reference}/timeline").json()["entries"]
    assert (entry["status"], entry["applied"], entry["flags"]) == ("out_for_delivery", True, [])


@pytest.mark.django_db(transaction=True)
def test_the_handoff_example_is_accepted_as_it_is(partner_client):
    fleet = CustodyFactory(partner_reference="NSF-5531").partner
    PartnerFactory(slug="onfleet-ldn")

    response = partner_client(fleet).post(
        "/api/partner/v1/handoffs", curl_body("/api/partner/v1/handoffs"), format="json"
    )

    assert response.status_code == 201, response.content


@pytest.mark.django_db(transaction=True)
def test_the_handoff_confirmation_example_lets_the_receiver_report_under_the_proposed_reference(
    partner_client,
):
    fleet = CustodyFactory(partner_reference="NSF-5531").partner
    receiver = PartnerFactory(slug="onfleet-ldn")
    handoff = curl_body("/api/partner/v1/handoffs")
    partner_client(fleet).post("/api/partner/v1/handoffs", handoff, format="json")
    client = partner_client(receiver)
    report = {
        "reference": handoff["to_reference"],
        "status": "picked_up",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    before = client.post("/api/partner/v1/events", report, format="json")

    confirmed = client.post(
        "/api/partner/v1/handoffs/confirm", curl_body("/api/partner/v1/handoffs/confirm"), format="json"
    )

    assert before.status_code == 404  # the proposal binds nothing until the receiver confirms it
    assert confirmed.status_code == 200, confirmed.content
    assert (confirmed.json()["partner_reference"], confirmed.json()["reference_confirmed"]) == (
        handoff["to_reference"],
        True,
    )
    assert client.post("/api/partner/v1/events", report, format="json").status_code == 202
