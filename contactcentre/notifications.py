"""Customer notifications: one message per change, never a storm, never more than the page shows.

`notify_change` listens to `tracking.changes` (subscribed in `ContactcentreConfig.ready`) and queues
e-mail or SMS through the outbox for out for delivery, arriving, attempt failed and delivered.
"Running late" belongs to operations' rules: when the sweep raises `eta_passed` or `late_risk`, the
rule's "notify the customer" action (`contactcentre.proactive`) calls `notify` once per episode, so
one lateness is told once, and switching the rule off stops it. Each message has a dedupe key (one
per subscriber and episode), waits for a minimum gap after the previous one and for the end of
quiet hours in the subscriber's time zone, supersedes a still-waiting older one, carries a signed
one-click unsubscribe link, and is put on the shipment's timeline as an Activity whose outcome is
the outbox state. The words come from `MessageTemplate` rows (editable and previewable in the
admin), rendered with what the public tracking page shows, nothing more.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core import signing
from django.db import transaction
from django.template import Context, Engine
from django.utils import timezone, translation

from contactcentre.models import MessageTemplate, Subscription
from tracking import changes, public
from tracking.models import Activity, OutboundMessage, Shipment
from tracking.outbox import queue_message
from tracking.services import record_activity
from tracking.statuses import Status

UNSUBSCRIBE_SALT = "baton.unsubscribe"
STATUS_PURPOSES = {
    Status.OUT_FOR_DELIVERY: MessageTemplate.Purpose.OUT_FOR_DELIVERY,
    Status.ARRIVING: MessageTemplate.Purpose.ARRIVING,
    Status.ATTEMPT_FAILED: MessageTemplate.Purpose.ATTEMPT_FAILED,
    Status.DELIVERED: MessageTemplate.Purpose.DELIVERED,
}
MAX_AGENT_MESSAGE = 1000

DEFAULT_TEMPLATES: dict[str, dict[str, str]] = {
    "out_for_delivery": {
        "subject": "Your order {{ reference }} is out for delivery",
        "email_body": "Your order {{ reference }} is out for delivery with {{ holder }}."
        "{% if estimate %}\nExpected {{ estimate }}.{% endif %}\n\n"
        "Follow it, leave instructions or choose another day:\n{{ link }}",
        "sms_body": "Your order {{ reference }} is out for delivery{% if estimate %}, expected {{ estimate }}"
        "{% endif %}. Track it or leave instructions: {{ link }}",
    },
    "arriving": {
        "subject": "Your courier is nearly with you ({{ reference }})",
        "email_body": "Your courier from {{ holder }} is nearly with you with order {{ reference }}.\n\n"
        "Follow it: {{ link }}",
        "sms_body": "Your courier is nearly with you with order {{ reference }}. {{ link }}",
    },
    "attempt_failed": {
        "subject": "We could not deliver your order {{ reference }}",
        "email_body": "We tried to deliver your order {{ reference }} but could not. {{ reason }}\n\n"
        "{{ next_steps }}\n\nLeave instructions or choose another day:\n{{ link }}",
        "sms_body": "We could not deliver order {{ reference }}. {{ reason }} {{ first_step }} {{ link }}",
    },
    "running_late": {
        "subject": "Your order {{ reference }} is running late",
        "email_body": "Sorry: your order {{ reference }} is running late.\n\n{{ late_text }}\n\n"
        "Follow it or choose another day:\n{{ link }}",
        "sms_body": "Sorry, order {{ reference }} is running late. {{ late_text }} {{ link }}",
    },
    "delivered": {
        "subject": "Your order {{ reference }} has been delivered",
        "email_body": "Your order {{ reference }} has been delivered by {{ holder }}.\n\n"
        "See the proof of delivery (you will need your order reference and postcode):\n{{ link }}",
        "sms_body": "Order {{ reference }} has been delivered. Proof of delivery: {{ link }}",
    },
    "agent_message": {
        "subject": "A message about your order {{ reference }}",
        "email_body": "{{ message }}\n\nYour delivery: {{ link }}",
        "sms_body": "{{ message }} {{ link }}",
    },
}

# Plain text out: no HTML escaping; a missing variable renders as nothing.
_ENGINE = Engine(autoescape=False, string_if_invalid="")


# --- the words -----------------------------------------------------------------------------------


def template_for(purpose: str) -> MessageTemplate:
    """The operations-edited template, else the built-in words (unsaved)."""
    found = MessageTemplate.objects.filter(purpose=purpose).first()
    return found or MessageTemplate(purpose=purpose, **DEFAULT_TEMPLATES[purpose])


def message_context(view: Mapping[str, Any], *, link: str, message: str = "") -> dict[str, Any]:
    """What a message may say: only what the public page shows (its `public_tracking` view)."""
    earliest, latest = view.get("eta_earliest"), view.get("eta_latest")
    estimate = ""
    if earliest and latest:
        start, end = timezone.localtime(earliest), timezone.localtime(latest)
        estimate = (
            f"around {end:%H:%M}" if end - start < timedelta(minutes=5) else f"{start:%H:%M}\u2013{end:%H:%M}"
        )
        if start.date() != timezone.localdate():
            estimate += f" on {start:%A %d %B}"
    steps = list(view.get("next_steps") or [])
    return {
        "reference": view["reference"],
        "status": view["status_label"],
        "status_text": view["status_text"],
        "reason": view.get("reason_label") or "",
        "holder": view.get("carrier") or "our delivery partner",
        "estimate": estimate,
        "late_text": view.get("late_text") or "",
        "next_steps": "\n".join(steps),
        "first_step": steps[0] if steps else "",
        "link": link,
        "help_email": (view.get("help") or {}).get("email", ""),
        "help_phone": (view.get("help") or {}).get("phone", ""),
        "message": message,
    }


def render_message(template: MessageTemplate, context: Mapping[str, Any]) -> tuple[str, str, str]:
    """(subject, e-mail body, SMS body) of a template with a context."""
    ctx = Context(dict(context))
    subject = _ENGINE.from_string(template.subject).render(ctx)
    return (
        " ".join(subject.split())[:200],
        _ENGINE.from_string(template.email_body).render(ctx).strip(),
        " ".join(_ENGINE.from_string(template.sms_body).render(ctx).split()),
    )


def sample_context() -> dict[str, Any]:
    """A believable context for previews in the admin (no real customer's data)."""
    now = timezone.now()
    return message_context(
        {
            "reference": "ORD-12345",
            "status_label": "Out for delivery",
            "status_text": "Your order is out for delivery.",
            "reason_label": "Nobody was in to take it.",
            "carrier": "Swift Couriers",
            "eta_earliest": now + timedelta(hours=1),
            "eta_latest": now + timedelta(hours=2),
            "late_text": "Running late: now expected between 15:10 and 16:00.",
            "next_steps": [
                "The courier will try again on the next delivery day.",
                "Tell us a safe place or a neighbour below, or choose another day.",
            ],
            "help": {"email": settings.HELP_EMAIL, "phone": settings.HELP_PHONE},
        },
        link=f"{settings.SITE_URL}/t/s.example-link",
        message="Hello, we have asked the courier to call before arriving. Sorry for the wait.",
    )


# --- when ----------------------------------------------------------------------------------------


def zone_of(subscription: Subscription) -> ZoneInfo:
    try:
        return ZoneInfo(subscription.time_zone or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


def after_quiet_hours(moment: datetime, zone: ZoneInfo) -> datetime:
    """`moment`, or the end of the quiet hours it falls in (in the subscriber's local time)."""
    start, end = settings.BATON["QUIET_HOURS_START"], settings.BATON["QUIET_HOURS_END"]
    if start == end:
        return moment
    local = moment.astimezone(zone)
    hour = local.hour
    quiet = (hour >= start or hour < end) if start > end else (start <= hour < end)
    if not quiet:
        return moment
    day = local.date() + timedelta(days=1) if start > end and hour >= start else local.date()
    return datetime.combine(day, time(end), tzinfo=zone)


def due_at(subscription: Subscription, now: datetime, *, gap: bool = True) -> datetime:
    """Now, or later: after the minimum gap since the last message, and outside quiet hours."""
    moment = now
    last = subscription.last_notified_at
    minimum = timedelta(seconds=settings.BATON["NOTIFY_MIN_GAP_SECONDS"])
    if gap and last is not None and moment < last + minimum:
        moment = last + minimum
    return after_quiet_hours(moment, zone_of(subscription))


# --- who -----------------------------------------------------------------------------------------


def active_subscriptions(shipment: Shipment) -> list[Subscription]:
    """The shipment's subscribers, with the merchant's consent turned into rows (so it can be revoked)."""
    subscriptions = list(Subscription.objects.filter(shipment=shipment))
    have = {(s.channel, s.address) for s in subscriptions}
    wanted = []
    if shipment.consent_email and shipment.customer_email:
        wanted.append((Subscription.Channel.EMAIL, shipment.customer_email.strip().lower()))
    if shipment.consent_sms and shipment.customer_phone:
        wanted.append((Subscription.Channel.SMS, shipment.customer_phone.strip()))
    for channel, address in wanted:
        if (channel, address) not in have:
            subscription, _ = Subscription.objects.get_or_create(
                shipment=shipment,
                channel=channel,
                address=address,
                defaults={"source": Subscription.Source.MERCHANT},
            )
            subscriptions.append(subscription)
    return [s for s in subscriptions if s.is_active]


def unsubscribe_url(subscription: Subscription) -> str:
    return f"{settings.SITE_URL}/u/{signing.dumps(subscription.pk, salt=UNSUBSCRIBE_SALT)}"


def subscription_for_unsubscribe(value: str) -> Subscription | None:
    try:
        pk = signing.loads(value, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    return Subscription.objects.select_related("shipment").filter(pk=pk).first()


def unsubscribe(subscription: Subscription) -> None:
    """Stop a subscription; waiting messages to it are cancelled and the timeline says so."""
    with transaction.atomic():
        if subscription.unsubscribed_at is None:
            subscription.unsubscribed_at = timezone.now()
            subscription.save(update_fields=["unsubscribed_at"])
            _cancel_waiting(subscription, now=subscription.unsubscribed_at)
            record_activity(
                subscription.shipment,
                kind="unsubscribed",
                actor=Activity.Actor.CUSTOMER,
                actor_label="customer",
                summary=f"Customer stopped {subscription.get_channel_display()} updates",
                details={"subscription": subscription.pk},
            )


def mask(address: str) -> str:
    """Enough of an address for an agent or the customer to recognise it."""
    if "@" in address:
        name, _, domain = address.partition("@")
        return f"{name[:1]}•••@{domain}"
    return f"•••{address[-3:]}"


# --- sending -------------------------------------------------------------------------------------


def _cancel_waiting(subscription: Subscription, *, now: datetime) -> int:
    """Older status messages still waiting (quiet hours, gap) are superseded by a newer one."""
    return (
        OutboundMessage.objects.filter(
            shipment_id=subscription.shipment_id,
            recipient=subscription.address,
            purpose__startswith="customer.",
            state=OutboundMessage.State.PENDING,
            next_attempt_at__gt=now,
        )
        # What an agent sent by hand (a free message, the tracking link again) is never superseded.
        .exclude(purpose__in=["customer.agent_message", "customer.message", "customer.tracking_link"])
        .update(state=OutboundMessage.State.CANCELLED)
    )


def _queue(
    shipment: Shipment,
    subscription: Subscription | None,
    *,
    channel: str,
    address: str,
    template: MessageTemplate,
    context: Mapping[str, Any],
    dedupe_key: str,
    send_at: datetime,
) -> OutboundMessage | None:
    subject, email_body, sms_body = render_message(template, context)
    headers: dict[str, str] = {}
    if subscription is not None:
        url = unsubscribe_url(subscription)
        email_body += f"\n\n--\nStop these updates: {url}"
        sms_body += f" Stop: {url}"
        headers = {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    if channel == Subscription.Channel.EMAIL:
        return queue_message(
            transport="email",
            purpose=f"customer.{template.purpose}",
            recipient=address,
            shipment=shipment,
            subject=subject,
            body=email_body,
            payload={"headers": headers},
            dedupe_key=dedupe_key,
            send_at=send_at,
        )
    return queue_message(
        transport="sms",
        purpose=f"customer.{template.purpose}",
        recipient=address,
        shipment=shipment,
        body=sms_body,
        dedupe_key=dedupe_key,
        send_at=send_at,
    )


def purpose_of(shipment: Shipment, change: changes.ShipmentChange) -> tuple[str, str] | None:
    """The status message a change calls for, with its episode (for the dedupe key), or None.

    "Running late" is not decided here: the sweep's flags are turned into actions by operations'
    rules (`contactcentre.proactive`), whose "notify the customer" action sends it once per episode.
    """
    after = change.after
    if change.status_changed and after.status in STATUS_PURPOSES:
        episode = shipment.status_at.isoformat() if shipment.status_at else after.status
        return STATUS_PURPOSES[Status(after.status)], episode
    return None


@dataclass(frozen=True)
class Told:
    """What `notify` did: the messages it queued (one per subscriber), each with its timeline entry,
    or, when it queued none, why (for the timeline)."""

    messages: list[OutboundMessage]
    activities: list[Activity]
    why_not: str = ""
    already_told: bool = False


def notify(shipment: Shipment, *, purpose: str, episode: str, rule: str = "") -> Told:
    """Queue one message of `purpose` per active subscriber, once per `episode`; `rule` names the rule
    that asked (the timeline shows it as the actor)."""
    if not (shipment.has_subscribers or shipment.consent_email or shipment.consent_sms):
        # Nobody to tell, and no query spent finding out (the ingest path calls this on every change).
        return Told([], [], "the customer has not subscribed to updates and the merchant gave no consent")
    subscriptions = active_subscriptions(shipment)
    if not subscriptions:
        return Told([], [], "the customer has unsubscribed from updates")
    template = template_for(purpose)
    if not template.is_active:
        return Told([], [], f"operations switched off the '{template.get_purpose_display()}' message")
    now = timezone.now()
    link = public.tracking_url(public.link_token(shipment))
    sent: list[OutboundMessage] = []
    activities: list[Activity] = []
    for subscription in subscriptions:
        dedupe_key = f"notify:{shipment.pk}:{subscription.pk}:{purpose}:{episode}"[:200]
        if OutboundMessage.objects.filter(dedupe_key=dedupe_key).exists():
            continue  # this episode was told already (the same change published again)
        with (
            translation.override(subscription.language or settings.LANGUAGE_CODE),
            timezone.override(zone_of(subscription)),
        ):
            context = message_context(public.public_tracking(shipment, now=now), link=link)
        # A newer message replaces one still waiting (quiet hours, gap) and takes its place in line.
        superseded = _cancel_waiting(subscription, now=now)
        send_at = due_at(subscription, now, gap=not superseded)
        message = _queue(
            shipment,
            subscription,
            channel=subscription.channel,
            address=subscription.address,
            template=template,
            context=context,
            dedupe_key=dedupe_key,
            send_at=send_at,
        )
        if message is None:
            continue
        Subscription.objects.filter(pk=subscription.pk).update(last_notified_at=send_at)
        activities.append(
            record_activity(
                shipment,
                kind="notification",
                actor=Activity.Actor.RULE if rule else Activity.Actor.SYSTEM,
                actor_label=rule or "Baton",
                summary=f"{template.get_purpose_display()}: {subscription.get_channel_display()} to "
                f"{mask(subscription.address)}"
                + (f", held until {timezone.localtime(send_at):%H:%M}" if send_at > now else ""),
                outbound=message,
                details={"purpose": purpose, "subscription": subscription.pk, "send_at": send_at.isoformat()},
            )
        )
        sent.append(message)
    if not sent:
        return Told([], [], "the customer was already told about this", already_told=True)
    return Told(sent, activities)


def notify_change(shipment: Shipment, change: changes.ShipmentChange) -> list[OutboundMessage]:
    """The `tracking.changes` listener: queue one message per subscriber for a status worth telling."""
    found = purpose_of(shipment, change)
    if found is None:
        return []
    purpose, episode = found
    return notify(shipment, purpose=purpose, episode=episode).messages


def on_shipment_change(shipment: Shipment, change: changes.ShipmentChange) -> None:
    notify_change(shipment, change)


def send_customer_message(
    shipment: Shipment, *, body: str, by_user: AbstractBaseUser | AnonymousUser | None
) -> list[OutboundMessage]:
    """An agent's free message to the customer: to the subscribers, else the order's e-mail or phone.

    Quiet hours apply (the message waits); the minimum gap does not. Raises ValueError when the body is
    empty or too long, or when there is no way to reach the customer.
    """
    body = body.strip()
    if not body or len(body) > MAX_AGENT_MESSAGE:
        raise ValueError(f"a message needs 1 to {MAX_AGENT_MESSAGE} characters")
    template = template_for(MessageTemplate.Purpose.AGENT_MESSAGE)
    now = timezone.now()
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    with transaction.atomic():
        subscriptions: list[Subscription | None] = list(active_subscriptions(shipment))
        targets: list[tuple[Subscription | None, str, str]] = [
            (s, s.channel, s.address) for s in subscriptions if s is not None
        ]
        if not targets and shipment.customer_email:
            targets = [(None, Subscription.Channel.EMAIL, shipment.customer_email)]
        elif not targets and shipment.customer_phone:
            targets = [(None, Subscription.Channel.SMS, shipment.customer_phone)]
        if not targets:
            raise ValueError("the customer has no e-mail address or phone number")
        view = public.public_tracking(shipment, now=now)
        context = message_context(view, link=public.tracking_url(public.link_token(shipment)), message=body)
        label = by_user.get_username() if by_user is not None and by_user.is_authenticated else "agent"
        user = by_user if by_user is not None and by_user.is_authenticated else None
        messages: list[OutboundMessage] = []
        for subscription, channel, address in targets:
            zone = zone_of(subscription) if subscription else ZoneInfo(settings.TIME_ZONE)
            send_at = after_quiet_hours(now, zone)
            message = _queue(
                shipment,
                subscription,
                channel=channel,
                address=address,
                template=template,
                context=context,
                # A double click within the same minute sends once.
                dedupe_key=f"agent:{shipment.pk}:{channel}:{address}:{digest}:{now:%Y%m%d%H%M}"[:200],
                send_at=send_at,
            )
            if message is None:
                continue
            record_activity(
                shipment,
                kind="customer_message",
                actor=Activity.Actor.AGENT,
                actor_label=label,
                user=user,
                summary=f"Message to the customer by {dict(Subscription.Channel.choices)[channel]} to "
                f"{mask(address)}"
                + (f", held until {timezone.localtime(send_at):%H:%M}" if send_at > now else ""),
                outbound=message,
                details={"body": body},
            )
            messages.append(message)
    return messages
