"""Live: a notification goes out through Django's SMTP backend to a real SMTP server on a local port."""

import email
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from contactcentre import notifications
from contactcentre.models import MessageTemplate, Subscription
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory
from tracking import changes
from tracking.models import Activity, OutboundMessage

pytestmark = [pytest.mark.smtp, pytest.mark.django_db(transaction=True)]


class Inbox:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


def test_out_for_delivery_email_arrives_at_a_real_smtp_server(smtp_server, settings):
    controller, inbox = smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS, settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = False, "", ""
    settings.DEFAULT_FROM_EMAIL = "Baton <tracking@baton.example>"
    settings.BATON = {**settings.BATON, "QUIET_HOURS_START": 0, "QUIET_HOURS_END": 0}
    for purpose, words in notifications.DEFAULT_TEMPLATES.items():
        MessageTemplate.objects.get_or_create(purpose=purpose, defaults=words)
    shipment = ShipmentFactory(reference="ORD-SMTP", customer_name="Grace Hopper", has_subscribers=True)
    CustodyFactory(shipment=shipment, partner=PartnerFactory(name="Swift Couriers"))
    Subscription.objects.create(
        shipment=shipment, channel="email", address="grace@example.com", source="page"
    )
    before = changes.Snapshot.of(shipment)
    shipment.status, shipment.status_at = "out_for_delivery", timezone.now()
    shipment.save()

    changes.publish(shipment, before)

    [envelope] = inbox.envelopes
    assert envelope.mail_from == "tracking@baton.example"
    assert envelope.rcpt_tos == ["grace@example.com"]
    received = email.message_from_bytes(envelope.content, policy=policy.default)
    assert received["Subject"] == "Your order ORD-SMTP is out for delivery"
    assert received["Auto-Submitted"] == "auto-generated"
    assert received["List-Unsubscribe"].startswith(f"<{settings.SITE_URL}/u/")
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = received.get_content()
    assert "out for delivery with Swift Couriers" in body
    assert f"{settings.SITE_URL}/t/s." in body
    assert "Grace" not in body
    message = OutboundMessage.objects.get(purpose="customer.out_for_delivery")
    assert message.state == OutboundMessage.State.SENT
    assert Activity.objects.get(kind="notification").outcome == "sent"


def test_an_smtp_server_that_is_down_leaves_the_message_for_a_retry(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    settings.BATON = {**settings.BATON, "QUIET_HOURS_START": 0, "QUIET_HOURS_END": 0}
    shipment = ShipmentFactory(has_subscribers=True)
    CustodyFactory(shipment=shipment)
    Subscription.objects.create(shipment=shipment, channel="email", address="a@example.com", source="page")
    before = changes.Snapshot.of(shipment)
    shipment.status, shipment.status_at = "delivered", timezone.now()
    shipment.save()

    changes.publish(shipment, before)

    message = OutboundMessage.objects.get(purpose="customer.delivered")
    assert message.state == OutboundMessage.State.RETRYING
    assert "e-mail not accepted" in message.last_error
    assert Activity.objects.get(kind="notification").outcome == "retrying"
