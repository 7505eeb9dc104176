"""What the console shows of proof of delivery and of a case's history."""

from contactcentre.models import CaseEvent
from contactcentre.presenters import describe_case_event, proof_items


def test_proof_is_in_words_and_stored_files_are_expiring_links():
    items = proof_items(
        {"photo": "proof/1/photo.jpg", "signed_by": "J. Bloggs", "location": {"lat": 51.5, "lng": -0.12}}
    )
    assert [(i.label, i.text) for i in items] == [
        ("Photo", "View the photo"),
        ("Received by", "J. Bloggs"),
        ("Where it was delivered", "51.50000, -0.12000"),
    ]
    assert items[0].url.startswith("/proof/")
    assert "proof/1/photo.jpg" not in items[0].url
    assert proof_items(None) == []


def test_case_history_lines_read_as_sentences():
    resolved = CaseEvent(action="resolved", details={"resolution": "redelivery_booked", "note": "Tuesday"})
    assert describe_case_event(resolved) == "resolved the case (redelivery booked) — “Tuesday”"
    handed = CaseEvent(action="handed_over", details={"owner": "bob"})
    assert describe_case_event(handed) == "handed the case over: now owned by bob"
