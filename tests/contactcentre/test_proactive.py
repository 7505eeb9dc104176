"""Proactive actions: the sweep raises a flag, operations' rules act once per episode, on the timeline."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from contactcentre import proactive, queues
from contactcentre.models import ActionRule, Case, ProactiveAction, Subscription
from contactcentre.presenters import shipment_timeline
from partners import http
from partners.models import InboundMessage, Partner
from partners.services.sweep import run_sweep
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory
from tests.partners.test_polling import AFTERSHIP_TRACKING, FakeSession, aftership_answer, aftership_custody
from tracking import outbox
from tracking.models import Activity, OutboundMessage
from tracking.statuses import Status

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def rules(db):
    """The migration's default rules (a transactional test elsewhere may have flushed them)."""
    proactive.ensure_default_rules()


@pytest.fixture
def send_now(django_capture_on_commit_callbacks):
    """Run the sweep and let the outbox send what the rules queued (eager tasks, on commit)."""

    def sweep():
        with django_capture_on_commit_callbacks(execute=True):
            return run_sweep()

    return sweep


def held(
    partner, *, status=Status.OUT_FOR_DELIVERY, heard_minutes_ago=None, assigned_minutes_ago=600, **fields
):
    """An open shipment held by `partner`, last heard from so many minutes ago (None: never)."""
    now = timezone.now()
    shipment = ShipmentFactory(status=status, **fields)
    custody = CustodyFactory(
        partner=partner, shipment=shipment, started_at=now - timedelta(minutes=assigned_minutes_ago)
    )
    shipment.current_custody = custody
    shipment.last_heard_at = None if heard_minutes_ago is None else now - timedelta(minutes=heard_minutes_ago)
    shipment.save()
    return shipment


def courier(**fields):
    defaults = {"slug": "swift", "name": "Swift Couriers", "ops_email": "ops@swift.example"}
    return PartnerFactory(**{**defaults, **fields})


def by_rules(shipment, kind=None):
    found = Activity.objects.filter(shipment=shipment, actor=Activity.Actor.RULE)
    return list(found.filter(kind=kind) if kind else found)


def report(partner_client, shipment, status="out_for_delivery", **event):
    response = partner_client(shipment.current_custody.partner).post(
        "/api/partner/v1/events",
        {
            "reference": shipment.current_custody.partner_reference,
            "status": status,
            "occurred_at": timezone.now().isoformat(),
            **event,
        },
        format="json",
    )
    assert response.status_code == 202, response.content


# --- chase -----------------------------------------------------------------------------------------


def test_a_silent_holder_is_chased_once_through_its_operations_email_not_once_per_sweep(send_now):
    shipment = held(courier(), heard_minutes_ago=60)  # 45 minutes is the out-for-delivery threshold

    send_now()
    send_now()

    [chase] = by_rules(shipment, "chase")
    assert chase.actor_label == "Chase a silent holder"
    assert chase.channel == "partner_email"
    assert chase.summary == "Chased Swift Couriers by e-mail to its operations contact"
    assert chase.outcome == OutboundMessage.State.SENT
    [email] = mail.outbox
    assert email.to == ["ops@swift.example"]
    assert "has not been heard from since" in email.body  # the reason goes with the chase
    record = ProactiveAction.objects.get(rule__action="chase", shipment=shipment)
    assert record.episode == (
        f"custody {shipment.current_custody_id} silent since {shipment.last_heard_at.isoformat()}"
    )
    assert record.activity == chase


def test_a_flag_that_clears_and_comes_back_in_the_same_episode_does_nothing_new(send_now):
    shipment = held(courier(), heard_minutes_ago=60)
    send_now()
    # An operator lifts the threshold and puts it back: the same silence is raised again.
    type(shipment).objects.filter(pk=shipment.pk).update(alerts=[])

    result = send_now()

    assert result.raised == {"stale_custodian": 1}
    assert len(by_rules(shipment, "chase")) == 1
    assert len(mail.outbox) == 1


def test_a_holder_that_speaks_then_goes_silent_again_is_chased_again_and_escalated(
    send_now, partner_client, django_capture_on_commit_callbacks
):
    shipment = held(courier(), heard_minutes_ago=60)
    send_now()
    assert not Case.objects.filter(escalated=True).exists()  # a first silence is chased, not escalated
    assert ProactiveAction.objects.get(rule__action="escalate").outcome.startswith("first silence")

    with django_capture_on_commit_callbacks(execute=True):
        report(partner_client, shipment)  # the holder speaks: the silence ends at once
    shipment.refresh_from_db()
    assert shipment.alerts == []
    with time_machine.travel(timezone.now() + timedelta(minutes=50)):
        send_now()  # silent again for longer than its threshold: a new episode

        supervisors = list(queues.cases("escalated", queues.Filters(), None))

    assert len(by_rules(shipment, "chase")) == 2
    assert len(mail.outbox) == 2
    [case] = supervisors
    assert (case.shipment, case.channel, case.owner, case.reason) == (
        shipment,
        Case.Channel.PROACTIVE,
        None,
        Case.Reason.HOLDER_SILENT,
    )
    assert case.opened_by_rule == "Escalate a holder silent a second time"
    assert "gone silent again" in case.summary
    [escalation] = by_rules(shipment, "escalation")
    assert escalation.case == case
    assert case.history.filter(action="escalated", actor_label=case.opened_by_rule).exists()


def test_a_holder_that_never_acknowledged_is_chased_once(send_now):
    shipment = held(courier(), status=Status.ASSIGNED, assigned_minutes_ago=130)

    send_now()
    send_now()

    [chase] = by_rules(shipment, "chase")
    assert chase.actor_label == "Chase a holder that never acknowledged"
    record = ProactiveAction.objects.get(rule=ActionRule.objects.get(name=chase.actor_label))
    assert record.episode == f"custody {shipment.current_custody_id} never reported"
    assert "was given the job at" in mail.outbox[0].body


def test_a_pull_partner_is_chased_through_its_vendor_api_and_its_answer_lands_on_the_timeline(
    send_now, monkeypatch
):
    custody = aftership_custody()  # the recorded AfterShip answer for this tracking
    shipment = custody.shipment
    shipment.status, shipment.current_custody = Status.IN_TRANSIT, custody
    shipment.last_heard_at = timezone.now() - timedelta(hours=27)  # a carrier's 26 hours in transit
    shipment.save()
    session = FakeSession((200, aftership_answer()))
    monkeypatch.setattr(
        "partners.transports.PartnerHttpClient", lambda: http.PartnerHttpClient(session=session)
    )

    send_now()

    [chase] = by_rules(shipment, "chase")
    assert (chase.channel, chase.outcome) == ("partner_api", OutboundMessage.State.SENT)
    assert chase.summary == f"Chased {custody.partner.name} by its API"
    assert session.calls[0][0].endswith(f"/trackings/{AFTERSHIP_TRACKING}")
    assert InboundMessage.objects.filter(
        channel=InboundMessage.Channel.POLL, partner=custody.partner
    ).exists()
    shipment.refresh_from_db()
    assert shipment.status == Status.OUT_FOR_DELIVERY
    assert "stale_custodian" not in shipment.alerts  # the vendor's answer is news: the silence is over


def test_a_holder_with_no_channel_is_put_in_front_of_an_agent_to_call(send_now):
    shipment = held(courier(ops_email=""), heard_minutes_ago=60)

    send_now()

    [chase] = by_rules(shipment, "chase")
    assert chase.summary.startswith("Could not chase: Swift Couriers has no contact channel")
    assert chase.outcome == "not_sent"
    case = Case.objects.get(shipment=shipment)
    assert case.owner is None
    assert case.channel == Case.Channel.PROACTIVE
    assert "call them" in case.summary
    assert chase.case == case


def test_a_kinds_switched_off_rule_overrides_the_rule_for_every_holder():
    ActionRule.objects.create(
        name="Carriers are not chased",
        flag="stale_custodian",
        action="chase",
        partner_kind="carrier",
        enabled=False,
    )
    carrier = held(
        courier(slug="pn", kind=Partner.Kind.CARRIER), status=Status.IN_TRANSIT, heard_minutes_ago=27 * 60
    )
    gig = held(courier(slug="gig"), heard_minutes_ago=60)

    run_sweep()

    assert by_rules(carrier, "chase") == []
    assert len(by_rules(gig, "chase")) == 1


# --- a chase that fails -----------------------------------------------------------------------------


@pytest.fixture
def failing_callback(settings):
    """A partner callback on loopback that answers 503 (allowed by the development setting)."""
    settings.BATON = {**settings.BATON, "ALLOW_PRIVATE_URLS": True}
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(503)
            self.send_header("Content-Length", "11")
            self.end_headers()
            self.wfile.write(b"unavailable")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/baton", received
    server.shutdown()
    server.server_close()


def test_a_failing_callback_chase_is_retried_with_backoff_then_shown_as_failed(
    send_now, failing_callback, client, django_user_model
):
    url, received = failing_callback
    partner = courier(adapter="native", callback_url=url)
    partner.full_clean()  # allowed on loopback only because of the development setting
    shipment = held(partner, heard_minutes_ago=60)

    send_now()

    message = OutboundMessage.objects.get(purpose="partner.chase")
    assert (message.state, message.attempts) == (OutboundMessage.State.RETRYING, 1)
    assert message.next_attempt_at > timezone.now()  # backoff before the next try
    assert received[0]["type"] == "chase"
    assert received[0]["partner_reference"]
    [action] = shipment_timeline(shipment)["baton_actions"]
    assert action.failed
    assert action.outcome == "Failed, will retry: the receiver answered 503"

    # Still failing when the outbox gives up: shown as failed, and an agent is asked to call.
    assert outbox.send_message(message.pk, now=timezone.now() + timedelta(days=4)) == "failed"

    assert len(received) == 2
    assert [a.succeeded for a in message.delivery_attempts.all()] == [False, False]
    case = Case.objects.get(shipment=shipment)
    assert "failed for good" in case.summary
    assert "call the holder" in case.summary
    assert Activity.objects.filter(shipment=shipment, kind="chase_failed", outbound=message).exists()
    agent = django_user_model.objects.create_user("agent", is_staff=True, is_superuser=True)
    client.force_login(agent)
    page = client.get(f"/console/shipments/{shipment.reference}/").content.decode()
    assert "<strong>Failed for good: the receiver answered 503</strong>" in page


def test_a_private_callback_url_is_refused_at_registration_and_at_sending(send_now, settings):
    partner = courier(callback_url="http://127.0.0.1:9/baton")
    with pytest.raises(ValidationError, match="private or reserved"):
        partner.full_clean()
    with pytest.raises(ValidationError, match="private or reserved"):
        Partner(
            slug="meta", name="Meta", kind="fleet", adapter="native", callback_url="http://169.254.169.254/"
        ).full_clean()
    # Saved anyway (or its DNS changed since): the chase is refused before connecting, never retried.
    shipment = held(partner, heard_minutes_ago=60)

    send_now()

    message = OutboundMessage.objects.get(purpose="partner.chase")
    assert message.state == OutboundMessage.State.FAILED
    assert "private or reserved address" in message.last_error
    assert Case.objects.filter(shipment=shipment, summary__contains="failed for good").exists()
    settings.BATON = {**settings.BATON, "ALLOW_PRIVATE_URLS": True}
    partner.full_clean()  # the development setting allows it


# --- queue and notify ---------------------------------------------------------------------------------


def test_a_passed_eta_puts_the_shipment_in_the_unassigned_queue_with_the_reason_in_words(
    send_now, partner_client, django_capture_on_commit_callbacks
):
    shipment = held(courier(), heard_minutes_ago=5, eta=timezone.now() - timedelta(minutes=10))

    send_now()
    send_now()

    [case] = queues.cases("unassigned", queues.Filters(), None)
    assert (case.shipment, case.channel, case.reason) == (shipment, Case.Channel.PROACTIVE, Case.Reason.LATE)
    assert case.opened_by_rule == "Queue a passed ETA for an agent"
    assert "has passed and the job is not finished" in case.summary
    [opened] = by_rules(shipment, "case_opened")
    assert case.summary in opened.summary

    # A new ETA that passes too is a new episode: the open case gets the new reason.
    with django_capture_on_commit_callbacks(execute=True):
        report(partner_client, shipment, eta=(timezone.now() + timedelta(minutes=20)).isoformat())
    shipment.refresh_from_db()
    assert "eta_passed" not in shipment.alerts
    with time_machine.travel(timezone.now() + timedelta(minutes=30)):
        send_now()

    assert Case.objects.filter(shipment=shipment).count() == 1
    [queued] = by_rules(shipment, "queued")
    assert queued.summary.startswith(f"Added to case {case.pk}: The ETA")


def test_without_a_subscription_the_running_late_message_is_on_the_timeline_as_not_sent_with_why(send_now):
    shipment = held(courier(), heard_minutes_ago=5, eta=timezone.now() - timedelta(minutes=10))

    send_now()

    [told] = by_rules(shipment, "notification")
    assert told.actor_label == "Tell the customer when the ETA has passed"
    assert told.outcome == "not_sent"
    assert told.summary == (
        "Running late message not sent: the customer has not subscribed to updates and the merchant "
        "gave no consent"
    )
    [entry] = [a for a in shipment_timeline(shipment)["baton_actions"] if a.what == told.summary]
    assert entry.failed
    assert entry.outcome.startswith("Not sent: the customer has not subscribed")
    assert not OutboundMessage.objects.filter(purpose="customer.running_late").exists()


def test_a_subscriber_hears_running_late_once_when_both_lateness_flags_are_raised_together(
    send_now, settings
):
    settings.BATON = {**settings.BATON, "QUIET_HOURS_START": 0, "QUIET_HOURS_END": 0}
    shipment = held(
        courier(),
        heard_minutes_ago=5,
        eta=timezone.now() - timedelta(minutes=10),
        late_risk=0.9,
        has_subscribers=True,
    )
    Subscription.objects.create(
        shipment=shipment, channel="email", address="grace@example.com", source="page"
    )

    send_now()
    send_now()

    [message] = OutboundMessage.objects.filter(purpose="customer.running_late")
    assert message.state == OutboundMessage.State.SENT
    [email] = mail.outbox
    assert email.to == ["grace@example.com"]
    [told] = by_rules(shipment, "notification")
    assert told.outbound == message
    outcomes = dict(
        ProactiveAction.objects.filter(rule__action="notify_customer").values_list("flag", "outcome")
    )
    assert outcomes == {
        "eta_passed": "running-late message queued to 1 subscriber",
        "late_risk": "the customer was already told about this lateness",
    }


def test_one_failing_action_does_not_undo_the_others(send_now, monkeypatch):
    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setitem(proactive.ACTIONS, "queue", broken)
    shipment = held(courier(), heard_minutes_ago=5, eta=timezone.now() - timedelta(minutes=10))

    send_now()

    outcomes = dict(ProactiveAction.objects.filter(shipment=shipment).values_list("rule__action", "outcome"))
    assert outcomes["queue"] == "failed: RuntimeError: boom"
    assert outcomes["notify_customer"].startswith("not sent")
    shipment.refresh_from_db()
    assert shipment.alerts == ["eta_passed"]


# --- rules are validated --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"flag": "conflict", "action": "chase"}, "flag", "sweep's flags"),
        ({"flag": "stale_custodian", "action": ""}, "action", "needs an action"),
        ({"flag": "eta_passed", "action": "escalate"}, "action", "second silence"),
        ({"flag": "stale_custodian", "action": "notify_customer"}, "action", "running late"),
        ({"flag": "late_risk", "action": "queue", "partner_kind": "drone"}, "partner_kind", ""),
        ({"flag": "stale_custodian", "action": "chase"}, "__all__", "already a rule"),
    ],
)
def test_rules_are_validated(fields, field, message):
    rule = ActionRule(name="New rule", **fields)

    with pytest.raises(ValidationError) as caught:
        rule.full_clean()

    assert field in caught.value.message_dict
    assert message in " ".join(caught.value.message_dict[field])


def test_operations_edit_rules_in_the_admin_and_a_bad_rule_is_refused_in_words(client, django_user_model):
    from tests.factories import give_role

    user = django_user_model.objects.create_user("ops", password="pw", is_staff=True)
    give_role(user, "operations")
    client.force_login(user)

    listed = client.get("/admin/contactcentre/actionrule/")
    refused = client.post(
        "/admin/contactcentre/actionrule/add/",
        {
            "name": "Escalate late",
            "flag": "eta_passed",
            "action": "escalate",
            "partner_kind": "",
            "enabled": "on",
        },
    )
    added = client.post(
        "/admin/contactcentre/actionrule/add/",
        {"name": "Queue risky carriers", "flag": "late_risk", "action": "queue", "partner_kind": "carrier"},
    )

    assert listed.status_code == 200
    assert "Chase a silent holder" in listed.content.decode()
    assert refused.status_code == 200
    assert "Escalation follows a second silence" in refused.content.decode()
    assert added.status_code == 302
    assert not ActionRule.objects.get(name="Queue risky carriers").enabled
