"""Polling partners that only offer a pull API."""

from __future__ import annotations

from partners.adapters import get_adapter
from partners.http import PartnerHttpClient
from partners.models import Custody, InboundMessage
from partners.services.inbound import finish_message, record_inbound
from partners.services.matching import record_events
from tracking.statuses import TERMINAL_STATUSES


def poll_pull_partners() -> int:
    """Queue one poll per open custody of every active pull partner."""
    from partners.adapters import REGISTRY
    from partners.tasks import poll_custody

    pull_adapters = [name for name, cls in REGISTRY.items() if cls.can_fetch]
    ids = list(
        Custody.objects.open()
        .filter(partner__is_active=True, partner__adapter__in=pull_adapters)
        .exclude(shipment__status__in=TERMINAL_STATUSES)
        .values_list("pk", flat=True)
    )
    for custody_id in ids:
        poll_custody.delay(custody_id)
    return len(ids)


def poll_custody(custody_id: int, *, client: PartnerHttpClient | None = None) -> int:
    """Fetch one job's history from its holder, store the answer as received, record its events."""
    custody = Custody.objects.select_related("partner").get(pk=custody_id)
    partner = custody.partner
    client = client or PartnerHttpClient()
    events = get_adapter(partner.adapter).fetch(
        client, config=partner.config, reference=custody.partner_reference, tz=partner.tzinfo
    )
    message = record_inbound(
        partner,
        channel=InboundMessage.Channel.POLL,
        body=client.last_body,
        headers={"x-baton-polled-reference": custody.partner_reference},
        enqueue=False,
    )
    unmatched = record_events(partner, events, message=message)
    finish_message(message, InboundMessage.State.PROCESSED, "", len(events) - len(unmatched))
    return len(events)
