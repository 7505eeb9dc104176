"""Nothing is lost: stored messages are listed for operations and replayed by command or admin action."""

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command

from partners import services
from partners.models import Custody, InboundMessage, Partner
from tests.factories import PartnerFactory, ShipmentFactory
from tracking.models import TrackingEvent

pytestmark = pytest.mark.django_db(transaction=True)

DAY_ONE = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CHANGELIST = "/admin/partners/inboundmessage/"


def store(
    partner: Partner, reference: str, status: str = "picked_up", *, event_id: str = ""
) -> InboundMessage:
    """A partner's message as the doors store it; processing runs at once (eager Celery)."""
    body = {
        "reference": reference,
        "status": status,
        "occurred_at": DAY_ONE.isoformat(),
        "event_id": event_id,
    }
    message = services.record_inbound(
        partner, channel=InboundMessage.Channel.WEBHOOK, body=json.dumps(body).encode(), headers={}
    )
    message.refresh_from_db()
    return message


def hold(partner: Partner, reference: str) -> Custody:
    """Operations fix the cause by hand (no assignment service, so nothing is replayed by itself)."""
    shipment = ShipmentFactory(reference=f"ORD-{reference}")
    return Custody.objects.create(
        partner=partner, shipment=shipment, partner_reference=reference, started_at=DAY_ONE
    )


def state_of(message: InboundMessage) -> tuple[str, int]:
    message.refresh_from_db()
    return message.state, message.attempts


def replay(*args: str) -> str:
    out = StringIO()
    call_command("replay_inbound", *args, stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def couriers(db) -> tuple[Partner, Partner]:
    return PartnerFactory(slug="swift", adapter="native"), PartnerFactory(slug="zoom", adapter="native")


def test_replay_by_partner_applies_that_partners_messages_only(couriers):
    swift, zoom = couriers
    early_swift, early_zoom = store(swift, "S-1"), store(zoom, "Z-1")
    assert state_of(early_swift) == state_of(early_zoom) == ("unmatched", 1)
    swift_job, zoom_job = hold(swift, "S-1"), hold(zoom, "Z-1")

    assert replay("--partner", "swift") == "1 message(s) queued for processing."

    assert state_of(early_swift) == ("processed", 2)
    assert state_of(early_zoom) == ("unmatched", 1)
    assert swift_job.shipment.events.get().status == "picked_up"
    assert not zoom_job.shipment.events.exists()


def test_replay_by_time_range_takes_received_at_or_after_since_and_before_until(couriers):
    swift, _ = couriers
    with time_machine.travel(DAY_ONE, tick=False) as clock:
        day_one = store(swift, "S-1", "picked_up")
        clock.move_to(DAY_ONE + timedelta(days=1))
        day_two = store(swift, "S-1", "in_transit")
        clock.move_to(DAY_ONE + timedelta(days=2))
        day_three = store(swift, "S-1", "out_for_delivery")
    hold(swift, "S-1")

    since, until = DAY_ONE + timedelta(days=1), DAY_ONE + timedelta(days=2)
    assert replay("--since", since.isoformat(), "--until", until.isoformat()).startswith("1 message")

    assert [state_of(m)[0] for m in (day_one, day_two, day_three)] == ["unmatched", "processed", "unmatched"]


def test_replay_by_state_reruns_only_that_state(couriers):
    swift, _ = couriers
    hold(swift, "S-1")
    broken = services.record_inbound(
        swift, channel=InboundMessage.Channel.WEBHOOK, body=b"{not json", headers={}
    )
    early = store(swift, "S-2")
    assert state_of(broken) == ("failed", 1)
    assert state_of(early) == ("unmatched", 1)

    replay("--state", "failed")

    assert state_of(broken) == ("failed", 2)
    broken.refresh_from_db()
    assert broken.error.startswith("cannot parse: body is not valid JSON")
    assert state_of(early) == ("unmatched", 1)


def test_by_default_unmatched_and_failed_messages_are_replayed(couriers):
    swift, _ = couriers
    broken = services.record_inbound(swift, channel=InboundMessage.Channel.WEBHOOK, body=b"[", headers={})
    early = store(swift, "S-2")
    hold(swift, "S-1")
    done = store(swift, "S-1")
    assert state_of(done) == ("processed", 1)

    assert replay() == "2 message(s) queued for processing."

    assert state_of(broken) == ("failed", 2)
    assert state_of(early) == ("unmatched", 2)
    assert state_of(done) == ("processed", 1)


def test_replaying_processed_messages_records_nothing_twice(couriers):
    swift, _ = couriers
    job = hold(swift, "S-1")
    first, second = (
        store(swift, "S-1", "picked_up", event_id="a"),
        store(swift, "S-1", "delivered", event_id="b"),
    )

    assert replay("--partner", "swift", "--state", "processed") == "2 message(s) queued for processing."

    assert state_of(first) == state_of(second) == ("processed", 2)
    assert list(job.shipment.events.order_by("sequence").values_list("status", flat=True)) == [
        "picked_up",
        "delivered",
    ]
    job.shipment.refresh_from_db()
    assert job.shipment.status == "delivered"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--partner", "nobody"], "No partner 'nobody'"),
        (["--since", "2026-11-23T09:00:00"], "not an ISO 8601 time with an offset"),
    ],
)
def test_replay_refuses_an_unknown_partner_or_a_time_without_an_offset(db, args, error):
    with pytest.raises(CommandError, match=error):
        replay(*args)


def test_rejected_messages_cannot_be_replayed_from_the_command(db):
    with pytest.raises(CommandError):
        replay("--state", "rejected")


# --- Operations in the admin ----------------------------------------------------------------------------


@pytest.fixture
def ops_client(client, django_user_model):
    """A staff user who may see and act on inbound messages, and nothing more."""
    user = django_user_model.objects.create_user("ops", "ops@example.com", "pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="partners", codename__in=["view_inboundmessage", "change_inboundmessage"]
        )
    )
    client.force_login(user)
    return client


def test_operations_list_unmatched_messages_with_their_reason(ops_client, couriers):
    swift, _ = couriers
    hold(swift, "S-1")
    early, done = store(swift, "S-404"), store(swift, "S-1")

    page = ops_client.get(CHANGELIST, {"state__exact": "unmatched"})

    assert page.status_code == 200
    html = page.content.decode()
    assert f"{CHANGELIST}{early.pk}/change/" in html
    assert f"{CHANGELIST}{done.pk}/change/" not in html
    assert "no shipment held by swift under: S-404" in html
    detail = ops_client.get(f"{CHANGELIST}{early.pk}/change/")
    assert detail.status_code == 200
    assert "S-404" in detail.content.decode()  # the body as received


def test_every_state_filter_of_the_message_list_loads(ops_client, couriers):
    store(couriers[0], "S-404")
    for state in InboundMessage.State.values:
        assert ops_client.get(CHANGELIST, {"state__exact": state}).status_code == 200


def test_the_admin_replay_action_applies_a_message_once_its_cause_is_fixed(ops_client, couriers):
    swift, _ = couriers
    early = store(swift, "S-1")
    rejected = services.record_inbound(
        swift, channel=InboundMessage.Channel.API, body=b"{}", headers={}, state="rejected", error="bad"
    )
    job = hold(swift, "S-1")

    response = ops_client.post(
        CHANGELIST, {"action": "replay", "_selected_action": [early.pk, rejected.pk]}, follow=True
    )

    assert response.status_code == 200
    assert "1 message(s) queued again." in response.content.decode()
    assert state_of(early) == ("processed", 2)
    assert state_of(rejected) == ("rejected", 0)
    assert TrackingEvent.objects.filter(shipment=job.shipment).count() == 1


def test_messages_are_not_listed_for_someone_who_is_not_staff(client, django_user_model, couriers):
    user = django_user_model.objects.create_user("courier", "c@example.com", "pw")
    client.force_login(user)

    assert client.get(CHANGELIST).status_code == 302
