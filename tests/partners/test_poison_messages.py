"""Poison messages end in `failed` after bounded attempts with backoff; the sweep is fair."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.db import DataError
from django.utils import timezone

from partners import services
from partners.models import InboundMessage
from partners.services import inbound

pytestmark = pytest.mark.django_db


def store(partner, **fields) -> InboundMessage:
    body = {"reference": "SWIFT-77", "status": "in_transit", "occurred_at": timezone.now().isoformat()}
    return InboundMessage.objects.create(
        partner=partner,
        channel=InboundMessage.Channel.API,
        body=json.dumps(body).encode(),
        content_hash="x",
        received_at=fields.pop("received_at", timezone.now()),
        **fields,
    )


@pytest.fixture
def poison(monkeypatch):
    def refuse(*args, **kwargs):
        raise DataError("unsupported Unicode escape sequence: \\u0000 cannot be converted to text")

    monkeypatch.setattr(inbound, "record_message_events", refuse)


def test_a_message_that_keeps_failing_ends_failed_with_its_error_after_bounded_attempts(
    custody, poison, settings
):
    settings.BATON = {**settings.BATON, "MAX_PROCESSING_ATTEMPTS": 3}
    message = store(custody.partner)
    outcomes = []
    start = timezone.now()
    for hour in range(5):
        with time_machine.travel(start + timedelta(hours=hour), tick=False):
            outcomes.append(services.process_inbound(message.pk))
            if hour == 0:
                message.refresh_from_db()
                assert message.retry_at == timezone.now() + timedelta(seconds=30)  # backing off

    message.refresh_from_db()
    assert outcomes[:3] == ["retrying", "retrying", "failed"]
    assert message.state == InboundMessage.State.FAILED
    assert (message.attempts, message.failures) == (3, 3)
    assert "DataError" in message.error
    assert "\\u0000" in message.error


def test_a_failed_poison_message_is_replayable(
    custody, poison, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.BATON = {**settings.BATON, "MAX_PROCESSING_ATTEMPTS": 1}
    message = store(custody.partner)
    services.process_inbound(message.pk)
    monkeypatch.undo()

    with django_capture_on_commit_callbacks(execute=True):
        assert services.replay_messages(partner=custody.partner) == 1

    message.refresh_from_db()
    assert message.state == InboundMessage.State.PROCESSED
    assert (message.attempts, message.failures) == (2, 0)


def test_the_sweep_takes_the_oldest_first_and_skips_messages_backing_off(custody, monkeypatch):
    now = timezone.now()
    backing_off = store(
        custody.partner, received_at=now - timedelta(hours=3), retry_at=now + timedelta(minutes=5)
    )
    oldest_ready = store(custody.partner, received_at=now - timedelta(hours=2))
    store(custody.partner, received_at=now - timedelta(hours=1))
    due_again = store(
        custody.partner, received_at=now - timedelta(hours=4), retry_at=now - timedelta(seconds=1)
    )
    sent: list[int] = []
    monkeypatch.setattr(inbound, "enqueue_processing", lambda ids: sent.extend(ids))

    assert services.sweep_unprocessed(limit=2) == 2

    assert sent == [due_again.pk, oldest_ready.pk]
    assert backing_off.pk not in sent
