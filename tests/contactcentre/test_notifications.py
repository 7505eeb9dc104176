"""Customer notifications: one per change, gaps and quiet hours, unsubscribe, never private data."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from contactcentre import notifications, proactive
from contactcentre.models import MessageTemplate, Subscription
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory
from tracking import changes
from tracking.models import Activity, OutboundMessage

pytestmark = pytest.mark.django_db(transaction=True)
LONDON = ZoneInfo("Europe/London")


@pytest.fixture(autouse=True)
def templates(db):
    """The migrations' templates and rules (transactional tests flush data between tests)."""
    for purpose, words in notifications.DEFAULT_TEMPLATES.items():
        MessageTemplate.objects.get_or_create(purpose=purpose, defaults=words)
    proactive.ensure_default_rules()


@pytest.fixture
def held(db):
    shipment = ShipmentFactory(
        reference="ORD-77", customer_name="Grace Hopper", address="221B Baker Street", postcode="NW1 6XE"
    )
    custody = CustodyFactory(
        shipment=shipment, partner=PartnerFactory(name="Swift Couriers"), partner_reference="SWIFT-99"
    )
    return custody


def subscribe(shipment, **fields):
    shipment.has_subscribers = True
    shipment.save(update_fields=["has_subscribers"])
    return Subscription.objects.create(
        shipment=shipment,
        channel=fields.pop("channel", "email"),
        address=fields.pop("address", "grace@example.com"),
        source="page",
        **fields,
    )


def report(partner_client, custody, **event):
    event.setdefault("occurred_at", timezone.now().isoformat())
    response = partner_client(custody.partner).post(
        "/api/partner/v1/events", {"reference": custody.partner_reference, **event}, format="json"
    )
    assert response.status_code == 202, response.content
    custody.shipment.refresh_from_db()


def customer_messages():
    return list(OutboundMessage.objects.filter(purpose__startswith="customer.").order_by("id"))


def test_out_for_delivery_sends_one_email_with_an_unsubscribe_link_and_nothing_private(
    held, partner_client, settings
):
    settings.BATON = {**settings.BATON, "QUIET_HOURS_START": 0, "QUIET_HOURS_END": 0}
    subscribe(held.shipment)

    report(partner_client, held, status="out_for_delivery", note="Driver Bob Smithson +447700900999")

    [message] = customer_messages()
    assert message.purpose == "customer.out_for_delivery"
    assert message.state == OutboundMessage.State.SENT
    [email] = mail.outbox
    assert email.to == ["grace@example.com"]
    assert email.subject == "Your order ORD-77 is out for delivery"
    assert "with Swift Couriers" in email.body
    assert f"{settings.SITE_URL}/t/s." in email.body
    assert email.extra_headers["List-Unsubscribe"].startswith(f"<{settings.SITE_URL}/u/")
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    for private in ("Grace", "Hopper", "Baker", "NW1 6XE", "Smithson", "447700900999", "SWIFT-99"):
        assert private not in email.body
        assert private not in email.subject
    activity = Activity.objects.get(kind="notification")
    assert activity.outbound == message
    assert activity.outcome == "sent"
    assert "g•••@example.com" in activity.summary


def test_the_same_change_published_twice_is_told_once(held, settings):
    settings.BATON = {**settings.BATON, "QUIET_HOURS_START": 0, "QUIET_HOURS_END": 0}
    shipment = held.shipment
    subscribe(shipment)
    before = changes.Snapshot.of(shipment)
    shipment.status, shipment.status_at = "out_for_delivery", timezone.now()
    shipment.save()

    changes.publish(shipment, before)
    changes.publish(shipment, before)

    assert len(customer_messages()) == 1


def test_a_second_change_waits_for_the_minimum_gap(held, partner_client, settings):
    settings.BATON = {**settings.BATON, "QUIET_HOURS_START": 0, "QUIET_HOURS_END": 0}
    subscribe(held.shipment)
    report(partner_client, held, status="out_for_delivery")

    report(partner_client, held, status="arriving")

    first, second = customer_messages()
    assert second.purpose == "customer.arriving"
    gap = second.next_attempt_at - first.next_attempt_at
    assert timedelta(seconds=590) < gap <= timedelta(seconds=settings.BATON["NOTIFY_MIN_GAP_SECONDS"])
    assert second.state == OutboundMessage.State.PENDING  # the outbox sweep sends it when due


def test_quiet_hours_hold_messages_until_morning_and_a_newer_one_supersedes(held, settings):
    shipment = held.shipment
    subscribe(shipment, time_zone="Europe/London")
    late_evening = datetime(2026, 6, 10, 22, 30, tzinfo=LONDON)
    with time_machine.travel(late_evening, tick=False):
        before = changes.Snapshot.of(shipment)
        shipment.status, shipment.status_at = "out_for_delivery", timezone.now()
        shipment.save()
        changes.publish(shipment, before)
    with time_machine.travel(late_evening + timedelta(minutes=30), tick=False):
        before = changes.Snapshot.of(shipment)
        shipment.status, shipment.status_at = "delivered", timezone.now()
        shipment.save()
        changes.publish(shipment, before)

    first, second = customer_messages()
    morning = datetime(2026, 6, 11, 8, 0, tzinfo=LONDON)
    assert first.state == OutboundMessage.State.CANCELLED
    assert second.purpose == "customer.delivered"
    assert second.next_attempt_at == morning
    assert mail.outbox == []


def test_running_late_is_sent_once_by_the_default_rule_when_the_sweep_raises_its_flag(held, settings):
    settings.BATON = {**settings.BATON, "QUIET_HOURS_START": 0, "QUIET_HOURS_END": 0}
    shipment = held.shipment
    subscribe(shipment)
    now = timezone.now()
    shipment.promised_until = now - timedelta(minutes=30)
    shipment.eta_earliest, shipment.eta_latest = now + timedelta(minutes=20), now + timedelta(minutes=80)
    shipment.save()
    before = changes.Snapshot.of(shipment)
    shipment.alerts = ["eta_passed"]
    shipment.save()

    changes.publish(shipment, before)
    changes.publish(shipment, before)

    [message] = customer_messages()
    assert message.purpose == "customer.running_late"
    assert "Running late: now expected between" in mail.outbox[0].body


def test_sms_subscribers_get_a_short_text_with_a_stop_link(held, settings):
    settings.BATON = {**settings.BATON, "QUIET_HOURS_START": 0, "QUIET_HOURS_END": 0}
    shipment = held.shipment
    subscribe(shipment, channel="sms", address="+447700900123")
    before = changes.Snapshot.of(shipment)
    shipment.status, shipment.status_at, shipment.reason = (
        "attempt_failed",
        timezone.now(),
        "recipient_not_home",
    )
    shipment.save()

    changes.publish(shipment, before)

    [message] = customer_messages()
    assert message.transport == "sms"
    assert message.recipient == "+447700900123"
    assert message.body.startswith("We could not deliver order ORD-77. Nobody was in to take it.")
    assert " Stop: " in message.body
    assert message.state == OutboundMessage.State.SENT


def test_unsubscribe_link_asks_on_get_and_stops_on_post(client, held, settings):
    settings.BATON = {**settings.BATON, "QUIET_HOURS_START": 0, "QUIET_HOURS_END": 0}
    shipment = held.shipment
    subscription = subscribe(shipment)
    path = notifications.unsubscribe_url(subscription).removeprefix(settings.SITE_URL)

    asked = client.get(path)
    assert asked.status_code == 200
    assert "Stop updates" in asked.content.decode()
    subscription.refresh_from_db()
    assert subscription.unsubscribed_at is None

    assert client.post(path, "List-Unsubscribe=One-Click", content_type="text/plain").status_code == 200
    subscription.refresh_from_db()
    assert subscription.unsubscribed_at is not None
    before = changes.Snapshot.of(shipment)
    shipment.status, shipment.status_at = "out_for_delivery", timezone.now()
    shipment.save()
    changes.publish(shipment, before)
    assert customer_messages() == []
    assert client.get(path[:-3] + "abc").status_code == 404


def test_merchant_consent_at_creation_subscribes_the_order_email(agent_client, settings):
    settings.BATON = {**settings.BATON, "QUIET_HOURS_START": 0, "QUIET_HOURS_END": 0}
    response = agent_client.post(
        "/api/v1/shipments",
        {
            "reference": "ORD-CONSENT",
            "customer_name": "Ada",
            "customer_email": "Ada@Example.com",
            "address": "1 Road",
            "postcode": "E1 6AN",
            "notify": {"email": True},
            "allow_cancel": True,
            "reschedule_options": [
                {"from": "2030-01-02T08:00:00Z", "until": "2030-01-02T12:00:00Z"},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    from tracking.models import Shipment

    shipment = Shipment.objects.get(reference="ORD-CONSENT")
    assert shipment.consent_email
    assert not shipment.consent_sms
    assert shipment.allow_cancel
    assert shipment.reschedule_options == [
        {"from": "2030-01-02T08:00:00+00:00", "until": "2030-01-02T12:00:00+00:00"}
    ]
    before = changes.Snapshot.of(shipment)
    shipment.status, shipment.status_at = "delivered", timezone.now()
    shipment.save()

    changes.publish(shipment, before)

    [message] = customer_messages()
    assert message.recipient == "ada@example.com"
    assert Subscription.objects.get().source == Subscription.Source.MERCHANT


def test_consent_without_an_address_is_a_clear_error(agent_client):
    response = agent_client.post(
        "/api/v1/shipments",
        {
            "reference": "ORD-X",
            "customer_name": "A",
            "address": "1",
            "postcode": "E1",
            "notify": {"sms": True},
        },
        format="json",
    )
    assert response.status_code == 400
    assert "notify" in response.json()["fields"]


def test_agent_message_goes_to_subscribers_and_onto_the_timeline(held, django_user_model, settings):
    settings.BATON = {**settings.BATON, "QUIET_HOURS_START": 0, "QUIET_HOURS_END": 0}
    agent = django_user_model.objects.create_user("ann", password="pw")
    subscribe(held.shipment)

    [message] = notifications.send_customer_message(
        held.shipment, body="We have asked the courier to call.", by_user=agent
    )
    message.refresh_from_db()

    assert message.purpose == "customer.agent_message"
    assert message.state == OutboundMessage.State.SENT
    assert "We have asked the courier to call." in mail.outbox[0].body
    activity = Activity.objects.get(kind="customer_message")
    assert activity.user == agent
    assert activity.actor == "agent"
    assert activity.outcome == "sent"
    with pytest.raises(ValueError, match="characters"):
        notifications.send_customer_message(held.shipment, body="  ", by_user=agent)


def test_agent_message_without_subscribers_uses_the_order_email(held, settings):
    settings.BATON = {**settings.BATON, "QUIET_HOURS_START": 0, "QUIET_HOURS_END": 0}
    [message] = notifications.send_customer_message(held.shipment, body="Hello", by_user=None)
    assert message.recipient == held.shipment.customer_email
    assert "List-Unsubscribe" not in mail.outbox[0].extra_headers


def test_operations_edit_the_words(held, settings):
    settings.BATON = {**settings.BATON, "QUIET_HOURS_START": 0, "QUIET_HOURS_END": 0}
    MessageTemplate.objects.filter(purpose="delivered").update(
        subject="Delivered: {{ reference }}", email_body="It is there. {{ link }}"
    )
    shipment = held.shipment
    subscribe(shipment)
    before = changes.Snapshot.of(shipment)
    shipment.status, shipment.status_at = "delivered", timezone.now()
    shipment.save()

    changes.publish(shipment, before)

    assert mail.outbox[0].subject == "Delivered: ORD-77"
    assert mail.outbox[0].body.startswith("It is there. http")


def test_a_switched_off_template_sends_nothing(held):
    MessageTemplate.objects.filter(purpose="delivered").update(is_active=False)
    shipment = held.shipment
    subscribe(shipment)
    before = changes.Snapshot.of(shipment)
    shipment.status, shipment.status_at = "delivered", timezone.now()
    shipment.save()
    changes.publish(shipment, before)
    assert customer_messages() == []


def test_admin_previews_a_template_with_a_sample_shipment(client, django_user_model, held):
    admin = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw")
    client.force_login(admin)
    template = MessageTemplate.objects.get(purpose="attempt_failed")

    sample = client.get(f"/admin/contactcentre/messagetemplate/{template.pk}/preview/")
    real = client.get(f"/admin/contactcentre/messagetemplate/{template.pk}/preview/?shipment=ORD-77")

    assert sample.status_code == 200
    assert "ORD-12345" in sample.content.decode()
    assert "Nobody was in to take it." in sample.content.decode()
    assert real.status_code == 200
    assert "ORD-77" in real.content.decode()
    assert "Hopper" not in real.content.decode()


def test_quiet_hours_wrap_midnight():
    zone = ZoneInfo("Europe/Paris")
    assert notifications.after_quiet_hours(datetime(2026, 3, 1, 6, 59, tzinfo=zone), zone) == datetime(
        2026, 3, 1, 8, 0, tzinfo=zone
    )
    assert notifications.after_quiet_hours(datetime(2026, 3, 1, 21, 0, tzinfo=zone), zone) == datetime(
        2026, 3, 2, 8, 0, tzinfo=zone
    )
    noon = datetime(2026, 3, 1, 12, 0, tzinfo=zone)
    assert notifications.after_quiet_hours(noon, zone) == noon
