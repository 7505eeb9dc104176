"""The outbox: stored before sending, retried with backoff, every attempt logged, deduplicated."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tracking import changes, outbox
from tracking.models import OutboundMessage
from tracking.outbox import SendError, Sent

pytestmark = pytest.mark.django_db(transaction=True)

CALLS: list[str] = []


def flaky(message):
    CALLS.append(message.recipient)
    if len(CALLS) <= 2:
        raise SendError("receiver answered 503", status_code=503)
    return Sent(status_code=200, response="ok")


def refusing(message):
    raise SendError("no such address", permanent=True)


@pytest.fixture(autouse=True)
def transports():
    CALLS.clear()
    outbox.register_transport("test_flaky", flaky)
    outbox.register_transport("test_refusing", refusing)


def test_a_failing_message_is_retried_with_backoff_until_it_is_sent():
    message = outbox.queue_message(transport="test_flaky", purpose="test", recipient="r1")
    message.refresh_from_db()
    assert message.state == OutboundMessage.State.RETRYING
    assert message.next_attempt_at > timezone.now()

    for _ in range(2):
        outbox.send_message(message.pk, now=message.next_attempt_at + timedelta(seconds=1))
        message.refresh_from_db()

    assert message.state == OutboundMessage.State.SENT
    assert [a.succeeded for a in message.delivery_attempts.all()] == [False, False, True]
    assert message.delivery_attempts.first().status_code == 503


def test_a_message_is_not_sent_before_its_retry_is_due():
    message = outbox.queue_message(transport="test_flaky", purpose="test", recipient="r1")

    assert outbox.send_message(message.pk) == "skipped"
    assert len(CALLS) == 1


def test_a_permanent_failure_is_not_retried():
    message = outbox.queue_message(transport="test_refusing", purpose="test", recipient="r1")

    message.refresh_from_db()
    assert message.state == OutboundMessage.State.FAILED
    assert message.last_error == "no such address"


def test_a_message_that_keeps_failing_gives_up_after_the_configured_age(settings):
    settings.BATON = {**settings.BATON, "OUTBOX_GIVE_UP_SECONDS": 60}
    message = outbox.queue_message(transport="test_refusing", purpose="test", recipient="r1")
    message.refresh_from_db()

    assert message.state == OutboundMessage.State.FAILED


def test_the_same_dedupe_key_queues_one_message():
    first = outbox.queue_message(transport="test_flaky", purpose="t", recipient="r", dedupe_key="k1")
    second = outbox.queue_message(transport="test_flaky", purpose="t", recipient="r", dedupe_key="k1")

    assert first is not None
    assert second is None
    assert OutboundMessage.objects.count() == 1


def test_an_unknown_transport_is_refused_when_queued():
    with pytest.raises(ValueError, match="no transport named"):
        outbox.queue_message(transport="pigeon", purpose="t", recipient="r")


def test_private_addresses_are_refused_unless_allowed(settings):
    settings.BATON = {**settings.BATON, "ALLOW_PRIVATE_URLS": False}
    for url in (
        "http://127.0.0.1/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/",
        "ftp://example.com/",
    ):
        with pytest.raises(outbox.UnsafeURL):
            outbox.check_public_url(url)
    settings.BATON = {**settings.BATON, "ALLOW_PRIVATE_URLS": True}
    assert outbox.check_public_url("http://127.0.0.1:9/hook") == ["127.0.0.1"]


def test_listeners_hear_a_status_change_once(custody, partner_client):
    heard = []

    def listener(shipment, change):
        heard.append((change.before.status, change.after.status))

    changes.subscribe(listener)
    try:
        client = partner_client(custody.partner)
        event = {"reference": "SWIFT-77", "status": "picked_up", "occurred_at": timezone.now().isoformat()}
        client.post("/api/partner/v1/events", event, format="json")
        client.post("/api/partner/v1/events", event, format="json")
    finally:
        changes._listeners.remove(listener)

    assert heard == [("pending", "picked_up")]


def test_a_replay_days_after_creation_gets_a_new_retry_window():
    """A message replayed after its first window closed is retried again, not failed on one attempt."""
    message = outbox.queue_message(transport="test_flaky", purpose="test", recipient="r1")
    days_ago = timezone.now() - timedelta(days=5)
    OutboundMessage.objects.filter(pk=message.pk).update(
        created_at=days_ago, state=OutboundMessage.State.FAILED
    )
    message.refresh_from_db()

    outbox.replay_message(message)  # the second attempt fails (503) again

    message.refresh_from_db()
    assert message.replayed_at is not None
    assert message.state == OutboundMessage.State.RETRYING
    outbox.send_message(message.pk, now=message.next_attempt_at + timedelta(seconds=1))
    message.refresh_from_db()
    assert message.state == OutboundMessage.State.SENT
    assert message.delivery_attempts.count() == 3
