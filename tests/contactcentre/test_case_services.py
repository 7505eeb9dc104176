"""Cases from first contact to closure: ownership, hand-over, escalation, resolution, audit."""

import pytest
from django.core import mail

from contactcentre import services
from contactcentre.models import Case, CaseEvent
from tests.factories import PartnerFactory, ShipmentFactory
from tracking.models import Activity, OutboundMessage, hash_token

pytestmark = pytest.mark.django_db


def actions(case):
    return list(CaseEvent.objects.filter(case=case).values_list("action", flat=True))


def test_one_agent_owns_a_case_from_first_contact_to_closure(agent, held_shipment):
    case = services.open_case(held_shipment, channel="phone", reason="late", opened_by=agent)
    services.take_ownership(case, by=agent)
    services.add_note(case, body="Customer says the van never came", by=agent)
    services.set_case_status(case, status=Case.Status.WAITING_ON_PARTNER, by=agent)
    case = services.resolve_case(case, resolution=Case.Resolution.REDELIVERY_BOOKED, by=agent)

    assert case.status == Case.Status.RESOLVED
    assert case.owner == agent
    assert case.resolved_at
    assert actions(case) == ["opened", "assigned", "note", "status", "resolved"]
    kinds = list(Activity.objects.filter(case=case).values_list("kind", flat=True))
    assert kinds == ["case_opened", "case_note", "case_resolved"]


def test_a_case_is_handed_to_another_agent_and_escalated(agent, other_agent, held_shipment):
    case = services.open_case(held_shipment, channel="email", reason="damaged", opened_by=agent, owner=agent)
    case = services.hand_over(case, to=other_agent, by=agent, note="end of shift")
    case = services.escalate_case(case, by=other_agent)

    assert case.owner == other_agent
    assert case.escalated
    handed = CaseEvent.objects.get(case=case, action="handed_over")
    assert handed.details == {"owner": "bob", "previous_owner": "alice", "note": "end of shift"}
    with pytest.raises(services.CaseError):
        services.escalate_case(case, by=other_agent)


def test_a_case_cannot_be_handed_to_someone_who_cannot_own_cases(agent, operator, held_shipment):
    case = services.open_case(held_shipment, channel="chat", reason="other", opened_by=agent, owner=agent)
    with pytest.raises(services.CaseError):
        services.hand_over(case, to=operator, by=agent)


def test_a_resolved_case_is_reopened_with_a_fresh_sla_and_can_not_be_resolved_twice(
    agent, other_agent, held_shipment
):
    case = services.open_case(held_shipment, channel="social", reason="complaint", opened_by=agent)
    case = services.resolve_case(case, resolution=Case.Resolution.INFORMED, by=agent)
    with pytest.raises(services.CaseError):
        services.resolve_case(case, resolution=Case.Resolution.INFORMED, by=agent)
    with pytest.raises(services.CaseError):
        services.take_ownership(case, by=agent)

    case = services.reopen_case(case, by=other_agent, note="called back")

    assert case.is_open
    assert case.owner == other_agent
    assert case.resolution == ""
    assert not case.is_past_sla()
    assert actions(case)[-1] == "reopened"


def test_the_audit_history_cannot_be_edited(agent, held_shipment):
    case = services.open_case(held_shipment, channel="phone", reason="late", opened_by=agent)
    event = CaseEvent.objects.get(case=case)
    event.actor_label = "someone else"
    with pytest.raises(ValueError, match="cannot be edited"):
        event.save()


def test_invalid_inputs_are_refused_in_words(agent, held_shipment):
    case = services.open_case(held_shipment, channel="phone", reason="late", opened_by=agent)
    with pytest.raises(services.CaseError):
        services.add_note(case, body="   ", by=agent)
    with pytest.raises(services.CaseError):
        services.set_case_status(case, status="resolved", by=agent)
    with pytest.raises(services.CaseError):
        services.resolve_case(case, resolution="because", by=agent)


def test_chasing_the_holder_queues_an_email_to_its_ops_contact_and_records_the_outcome(
    agent, held_shipment, django_capture_on_commit_callbacks
):
    case = services.open_case(held_shipment, channel="phone", reason="where_is_my_order", opened_by=agent)

    with django_capture_on_commit_callbacks(execute=True):
        result = services.chase_holder(held_shipment, by_user=agent, case=case, note="Customer is waiting in")

    message = OutboundMessage.objects.get(purpose="partner.chase")
    assert message.transport == "partner_email"
    assert message.recipient == "ops@swift.example"
    assert "SW-9" in message.body
    assert "Customer is waiting in" in message.body
    assert mail.outbox[-1].to == ["ops@swift.example"]  # sent by the (eager) task
    result.activity.refresh_from_db()
    assert result.activity.kind == "chase"
    assert result.activity.case == case
    assert result.activity.outcome == OutboundMessage.State.SENT
    assert CaseEvent.objects.filter(case=case, action="action", details__kind="chase").exists()


def test_a_holder_without_a_channel_cannot_be_chased_and_nothing_is_recorded(agent, held_shipment):
    partner = held_shipment.current_custody.partner
    partner.ops_email = ""
    partner.save()
    with pytest.raises(services.CaseError, match="no contact channel"):
        services.chase_holder(held_shipment, by_user=agent)
    assert not Activity.objects.filter(kind="chase").exists()


def test_an_unheld_shipment_cannot_be_chased(agent):
    with pytest.raises(services.CaseError, match="Nobody holds"):
        services.chase_holder(ShipmentFactory(), by_user=agent)


def test_resending_the_tracking_link_issues_a_new_token_and_the_old_one_stops_working(agent, held_shipment):
    old_hash = held_shipment.tracking_token_hash
    services.resend_tracking_link(held_shipment, by_user=agent, channel="sms")

    held_shipment.refresh_from_db()
    message = OutboundMessage.objects.get(purpose="customer.tracking_link")
    token = message.body.rsplit("/t/", 1)[1]
    assert held_shipment.tracking_token_hash == hash_token(token) != old_hash
    assert message.transport == "sms"
    assert message.recipient == held_shipment.customer_phone
    assert Activity.objects.get(kind="link_sent").outbound == message
    assert token not in Activity.objects.get(kind="link_sent").summary


def test_instructions_and_reschedules_are_routed_to_the_holder(agent, held_shipment):
    services.route_instruction(held_shipment, by_user=agent, text="Leave with number 12")
    services.route_instruction(held_shipment, by_user=agent, text="Tomorrow after 5pm", reschedule=True)

    purposes = set(OutboundMessage.objects.values_list("purpose", "recipient"))
    assert purposes == {
        ("partner.customer_instructions", "ops@swift.example"),
        ("partner.customer_reschedule", "ops@swift.example"),
    }
    assert set(Activity.objects.values_list("kind", flat=True)) == {"instruction", "reschedule"}


def test_messaging_the_customer_goes_through_the_outbox(
    agent, held_shipment, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.message_customer(held_shipment, by_user=agent, body="Your driver is 10 minutes away")
    message = OutboundMessage.objects.get(purpose="customer.message")
    assert message.recipient == held_shipment.customer_email
    assert message.state == "sent"


def test_operations_reassign_to_another_partner_and_the_old_holder_is_ended(operator, held_shipment):
    fleet = PartnerFactory(slug="fleet", name="Own Fleet")
    services.reassign_to_partner(held_shipment, by_user=operator, partner=fleet, partner_reference="F-1")

    held_shipment.refresh_from_db()
    assert held_shipment.current_custody.partner == fleet
    assert [c.ended_at is None for c in held_shipment.custody.order_by("id")] == [False, True]
    assert (
        Activity.objects.get(kind="reassigned").summary
        == "Reassigned from Swift Couriers to Own Fleet as F-1"
    )


def test_an_action_refuses_a_case_about_another_shipment(agent, held_shipment):
    other = services.open_case(ShipmentFactory(), channel="phone", reason="late", opened_by=agent)
    with pytest.raises(services.CaseError):
        services.message_customer(held_shipment, by_user=agent, body="hi", case=other)
