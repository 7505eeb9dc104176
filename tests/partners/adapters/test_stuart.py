import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from partners.adapters.base import InboundRequest, PartnerError, VerificationError
from partners.adapters.stuart import STATUS_MAP, StuartAdapter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "partners" / "stuart"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
TOKEN = MANIFEST["auth"]["test_value"]
LONDON = ZoneInfo("Europe/London")
adapter = StuartAdapter()


def request(body: bytes, headers: dict[str, str] | None = None) -> InboundRequest:
    given = {"Authorization": TOKEN} if headers is None else headers
    return InboundRequest(body=body, headers={k.lower(): v for k, v in given.items()})


def parse(body: bytes) -> list[Any]:
    return adapter.parse(body, headers={}, tz=LONDON)


def extra(name: str) -> bytes:
    return (FIXTURES / "extra" / name).read_bytes()


@pytest.mark.parametrize("entry", MANIFEST["files"], ids=lambda e: e["file"])
def test_every_sample_verifies_and_parses_to_its_expected_status(entry: dict[str, Any]) -> None:
    body = (FIXTURES / entry["file"]).read_bytes()
    adapter.verify(request(body, entry["headers"]), [TOKEN])
    events = parse(body)
    statuses = [e for e in events if e.kind == "status"]
    if entry["expected_status"] is None:
        assert statuses == []
        assert [e.kind for e in events] == ["location"]
    else:
        assert [e.status for e in statuses] == [entry["expected_status"]]
    assert all(e.reference == "184422901" for e in events)


def test_the_bare_token_is_accepted_as_the_secret() -> None:
    adapter.verify(request(b"{}"), ["stuart-holdout-webhook-token-9f2c"])


def test_a_rotated_second_secret_is_accepted() -> None:
    adapter.verify(request(b"{}"), ["Bearer old-token", TOKEN])


def test_a_wrong_token_is_refused() -> None:
    with pytest.raises(VerificationError):
        adapter.verify(request(b"{}"), ["Bearer something-else"])


def test_a_missing_authorization_header_is_refused() -> None:
    with pytest.raises(VerificationError, match="missing"):
        adapter.verify(request(b"{}", {}), [TOKEN])


def test_an_empty_secret_never_matches() -> None:
    with pytest.raises(VerificationError):
        adapter.verify(request(b"{}", {"Authorization": "Bearer "}), ["", "Bearer "])


def test_the_job_id_is_the_reference_and_delivery_id_and_merchant_ref_are_alternatives() -> None:
    [event] = parse((FIXTURES / "01_job_create.json").read_bytes())
    assert event.reference == "184422901"
    assert event.alt_references == ("226710553", "CLK-ORD-7781")
    assert event.occurred_at == datetime(2025, 6, 12, 18, 4, 55, tzinfo=UTC)


def test_waiting_at_pickup_is_assigned_with_the_at_pickup_sub_status() -> None:
    [event] = parse((FIXTURES / "07_delivery_update_waiting_at_pickup.json").read_bytes())
    assert (event.status, event.sub_status, event.raw_status) == (
        "assigned",
        "at_pickup",
        "waiting_at_pickup",
    )
    assert event.eta == datetime(2025, 6, 12, 18, 19, 40, tzinfo=UTC)


def test_driver_location_strings_become_floats_and_no_driver_details_leak() -> None:
    [event] = parse((FIXTURES / "05_driver_update_location.json").read_bytes())
    assert (event.kind, event.status) == ("location", None)
    assert (event.latitude, event.longitude) == (51.524471, -0.107208)
    assert event.alt_references == ("226710553",)
    assert "Martin" not in repr(event)
    assert "+44" not in repr(event)


def test_no_courier_surname_or_phone_in_any_status_event() -> None:
    for path in FIXTURES.glob("**/*.json"):
        if path.name != "manifest.json":
            for event in parse(path.read_bytes()):
                assert "Martin" not in repr(event)
                assert "+447700900981" not in repr(event)


def test_delivering_is_out_for_delivery_at_the_pickup_time() -> None:
    [event] = parse(extra("delivery_update_delivering.json"))
    assert event.status == "out_for_delivery"
    assert event.occurred_at == datetime(2025, 6, 12, 18, 12, 20, tzinfo=UTC)


def test_delivered_carries_the_signature_proof_and_the_delivery_time() -> None:
    [event] = parse(extra("delivery_update_delivered.json"))
    assert event.status == "delivered"
    assert event.occurred_at == datetime(2025, 6, 12, 18, 20, 5, tzinfo=UTC)
    assert event.proof == {"signature_url": "https://stuart-proofs.example/226710553/signature.png"}
    assert event.eta is None


def test_job_finished_and_delivery_delivered_are_two_terminal_reports_of_one_fact() -> None:
    [from_job] = parse(extra("job_update_finished.json"))
    [from_delivery] = parse(extra("delivery_update_delivered.json"))
    assert from_job.status == from_delivery.status == "delivered"
    assert from_job.occurred_at == from_delivery.occurred_at
    assert from_job.references == from_delivery.references


def test_a_cancelled_job_maps_the_cancellation_reason_and_keeps_the_comment() -> None:
    [event] = parse(extra("job_update_canceled.json"))
    assert (event.status, event.reason) == ("cancelled", "cancelled_by_customer")
    assert event.note == "Customer changed their mind"
    assert event.occurred_at == datetime(2025, 6, 12, 18, 9, tzinfo=UTC)


def test_a_cancellation_by_the_client_without_a_known_reason_is_by_merchant() -> None:
    payload = json.loads(extra("job_update_canceled.json"))
    payload["data"]["cancellation"] = {"canceledBy": "client", "reasonKey": "other", "comment": None}
    [event] = parse(json.dumps(payload).encode())
    assert event.reason == "cancelled_by_merchant"


def test_an_expired_job_is_cancelled_for_lack_of_courier() -> None:
    payload = json.loads((FIXTURES / "01_job_create.json").read_bytes())
    payload["data"]["status"] = "expired"
    [event] = parse(json.dumps(payload).encode())
    assert (event.status, event.reason) == ("cancelled", "no_courier")


def test_a_multi_drop_job_reports_each_delivery_with_its_own_merchant_reference() -> None:
    payload = json.loads((FIXTURES / "03_job_update_in_progress.json").read_bytes())
    second = dict(
        payload["data"]["deliveries"][0], id=226710554, clientReference="CLK-ORD-7782", status="pending"
    )
    payload["data"]["deliveries"].append(second)
    events = parse(json.dumps(payload).encode())
    assert [(e.status, e.alt_references) for e in events] == [
        ("assigned", ("226710553", "CLK-ORD-7781")),
        ("info_received", ("226710554", "CLK-ORD-7782")),
    ]


def test_redelivery_of_the_same_message_parses_identically() -> None:
    body = (FIXTURES / "06_delivery_update_almost_picking.json").read_bytes()
    assert parse(body) == parse(body)


def test_an_unknown_status_is_a_permanent_error() -> None:
    payload = json.loads((FIXTURES / "06_delivery_update_almost_picking.json").read_bytes())
    payload["data"]["status"] = "teleporting"
    with pytest.raises(PartnerError) as caught:
        parse(json.dumps(payload).encode())
    assert caught.value.permanent


def test_unknown_topics_are_ignored() -> None:
    assert parse(b'{"event": "package", "type": "create", "data": {"id": 1}}') == []


def test_every_mapped_code_is_a_canonical_status() -> None:
    assert {"pending", "picking", "delivering", "delivered", "canceled", "searching", "finished"} <= set(
        STATUS_MAP
    )
