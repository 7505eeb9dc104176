from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, models
from django.db.models import Q
from django.utils import timezone

from tracking.statuses import TERMINAL_STATUSES, EventKind, Reason, Status

if TYPE_CHECKING:
    from partners.models import Partner

__all__ = ["EventKind", "Merchant", "Reason", "Shipment", "Status", "TrackingEvent", "WebhookEndpoint"]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# A UK postcode written without its space ("N10PQ"): outward code, then the 3-character inward code.
_UK_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")


def normalise_postcode(postcode: str) -> str:
    """Upper case, single spaces; a UK postcode typed without its space gets it back ("n10pq" -> "N1 0PQ")."""
    text = " ".join(postcode.upper().split())
    uk = _UK_POSTCODE.match(text.replace(" ", ""))
    return f"{uk[1]} {uk[2]}" if uk else text


def phone_digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


class ShipmentQuerySet(models.QuerySet["Shipment"]):
    def open(self) -> ShipmentQuerySet:
        return self.exclude(status__in=TERMINAL_STATUSES)

    def carrying(self, *codes: str) -> ShipmentQuerySet:
        """Shipments whose reconciled flags or sweep alerts hold any of `codes` (what `all_flags` shows)."""
        condition = Q()
        for code in codes:
            if connection.features.supports_json_field_contains:
                condition |= Q(flags__contains=[code]) | Q(alerts__contains=[code])
            else:  # SQLite (the newcomer's default): match the quoted code in the stored JSON text
                condition |= Q(flags__icontains=f'"{code}"') | Q(alerts__icontains=f'"{code}"')
        return self.filter(condition) if codes else self

    def held_by(self, partner: Partner) -> ShipmentQuerySet:
        """Shipments the partner holds now or held at some point."""
        return self.filter(custody__partner=partner).distinct()

    def search(self, term: str) -> ShipmentQuerySet:
        """What a caller may know: our reference, a partner's reference, e-mail, phone or postcode."""
        term = term.strip()
        if not term:
            return self
        condition = (
            Q(reference__iexact=term)
            | Q(custody__partner_reference__iexact=term)
            | Q(customer_email__iexact=term)
            | Q(postcode__in={normalise_postcode(term), "".join(term.upper().split())})
        )
        digits = phone_digits(term)
        if len(digits) >= 6:
            condition |= Q(phone_digits__endswith=digits[-10:])
        return self.filter(condition).distinct()


class Merchant(models.Model):
    """A retailer whose orders Baton tracks; merchants receive webhooks about their shipments."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


DEFAULT_MERCHANT = "default"


class Shipment(models.Model):
    """One delivery to one customer; its status fields are the persisted result of the timeline."""

    reference = models.CharField(max_length=64, unique=True, help_text="The merchant's reference.")
    merchant = models.SlugField(
        max_length=64, default=DEFAULT_MERCHANT, help_text="Slug of the merchant whose order this is."
    )
    customer_name = models.CharField(max_length=200)
    customer_email = models.EmailField(blank=True, db_index=True)
    customer_phone = models.CharField(max_length=32, blank=True)
    phone_digits = models.CharField(max_length=32, blank=True, db_index=True, editable=False)
    address = models.TextField(help_text="Full destination address; never shown on the public page.")
    postcode = models.CharField(max_length=16, db_index=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    promised_from = models.DateTimeField(null=True, blank=True)
    promised_until = models.DateTimeField(null=True, blank=True)

    status = models.CharField(max_length=32, choices=Status.choices, default=Status.PENDING, db_index=True)
    reason = models.CharField(max_length=32, choices=Reason.choices, blank=True)
    sub_status = models.CharField(max_length=32, blank=True)
    status_at = models.DateTimeField(null=True, blank=True)
    current_custody = models.ForeignKey(
        "partners.Custody", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    eta = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(
        null=True, blank=True, help_text="When the latest entry of the timeline happened (as reported)."
    )
    last_heard_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Last heard: when Baton last received anything from the current holder about this job.",
    )
    proof = models.JSONField(null=True, blank=True)
    flags = models.JSONField(default=list, blank=True)
    webhook_sequence = models.PositiveIntegerField(
        default=0, editable=False, help_text="Number of the last merchant webhook about this shipment."
    )
    # Written by the sweep (tracking.flags), never by reconciliation: flags that grow true with time.
    alerts = models.JSONField(default=list, blank=True, help_text="Flags raised by the sweep.")
    eta_earliest = models.DateTimeField(null=True, blank=True, help_text="ETA window start.")
    eta_latest = models.DateTimeField(null=True, blank=True, help_text="ETA window end.")
    eta_source = models.CharField(max_length=16, blank=True, help_text="partner or baton.")
    late_risk = models.FloatField(null=True, blank=True, help_text="Probability of missing the window.")
    late_risk_explanation = models.TextField(blank=True)

    # What the merchant lets the customer do on the tracking page, and the consent it collected.
    allow_cancel = models.BooleanField(
        default=False, help_text="The customer may ask to cancel until the courier sets off."
    )
    reschedule_options = models.JSONField(
        default=list,
        blank=True,
        help_text='Windows the customer may choose: [{"from": ISO time, "until": ISO time}, ...]. '
        "Empty: Baton offers mornings and afternoons of the next BATON_RESCHEDULE_DAYS days.",
    )
    consent_email = models.BooleanField(
        default=False, help_text="The merchant collected consent to e-mail delivery updates."
    )
    consent_sms = models.BooleanField(
        default=False, help_text="The merchant collected consent to text delivery updates."
    )
    # When the customer last used self-service on the tracking page.
    customer_acted_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the customer last asked for something."
    )
    # Lets the notification listener skip its lookup on the ingest path when nobody asked for updates.
    has_subscribers = models.BooleanField(
        default=False, editable=False, help_text="Someone subscribed to updates on the tracking page."
    )

    tracking_token_hash = models.CharField(max_length=64, unique=True, editable=False)
    tracking_token_expires_at = models.DateTimeField()

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ShipmentQuerySet.as_manager()

    # What the merchant's order says; everything else is Baton's own.
    ORDER_FIELDS = [
        "reference",
        "merchant",
        "customer_name",
        "customer_email",
        "customer_phone",
        "address",
        "postcode",
        "latitude",
        "longitude",
        "promised_from",
        "promised_until",
    ]
    # The persisted result of the timeline: written only by `tracking.services.reconcile_shipment`.
    RECONCILED_FIELDS = [
        "status",
        "reason",
        "sub_status",
        "status_at",
        "current_custody",
        "eta",
        "last_event_at",
        "last_heard_at",
        "proof",
        "flags",
        "alerts",  # only ever cleared by reconciliation (the sweep raises them)
    ]

    class Meta:
        ordering = ["-created_at"]
        # The newest-first list and the dashboard's shipments-per-day both read by creation time.
        indexes = [
            models.Index(fields=["created_at"], name="shipment_created"),
            # The few shipments the sweep has flagged: it re-reads them every pass, queues list them.
            models.Index(fields=["status"], condition=~Q(alerts=[]), name="shipment_alerted"),
        ]

    def __str__(self) -> str:
        return self.reference

    def save(self, *args: object, **kwargs: object) -> None:
        self.postcode = normalise_postcode(self.postcode)
        self.phone_digits = phone_digits(self.customer_phone)
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def all_flags(self) -> list[str]:
        """Reconciliation's flags and the sweep's, once each: what every reader shows."""
        return list(dict.fromkeys([*self.flags, *self.alerts]))

    @property
    def postcode_district(self) -> str:
        """The outward code ("SW1A" of "SW1A 1AA"): as much of the address as the public may see."""
        return self.postcode.split(" ")[0] if self.postcode else ""

    def issue_tracking_token(self, now: datetime | None = None) -> str:
        """Make a new 256-bit customer token; only its hash is kept, so return it to show once."""
        token = secrets.token_urlsafe(32)
        self.tracking_token_hash = hash_token(token)
        days = settings.BATON["TRACKING_TOKEN_DAYS"]
        self.tracking_token_expires_at = (now or timezone.now()) + timedelta(days=days)
        return token


class TrackingEventQuerySet(models.QuerySet["TrackingEvent"]):
    def timeline_order(self) -> TrackingEventQuerySet:
        return self.order_by("sequence", "id")

    def timeline_rows(self) -> models.QuerySet[TrackingEvent, dict[str, Any]]:
        """In timeline order, as plain dicts with each entry's source and custodian (one query)."""
        own_fields = [
            f.attname for f in self.model._meta.concrete_fields if f.name not in {"shipment", "dedupe_key"}
        ]
        related = [
            "partner__slug",
            "partner__name",
            "message__channel",
            "custody__partner_reference",
            "custody__partner__slug",
        ]
        return self.timeline_order().values(*own_fields, *related)

    def with_sources(self) -> TrackingEventQuerySet:
        """In timeline order, with what agents see of each entry's source and custodian (one query)."""
        own_fields = [
            f.name for f in self.model._meta.concrete_fields if f.name not in {"shipment", "dedupe_key"}
        ]
        related = ["partner__slug", "partner__name", "custody__partner_reference", "custody__partner__slug"]
        return (
            self.select_related("partner", "custody__partner", "message")
            .only(*own_fields, *related, "message__channel")
            .timeline_order()
        )


class TrackingEvent(models.Model):
    """A normalised fact from one source; `sequence`, `applied`, `flags`, `custody` come from the timeline."""

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="events")
    partner = models.ForeignKey(
        "partners.Partner", null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    custody = models.ForeignKey(
        "partners.Custody",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
        help_text="Who held the shipment when this happened.",
    )
    message = models.ForeignKey(
        "partners.InboundMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    kind = models.CharField(max_length=16, choices=EventKind.choices, default=EventKind.STATUS)
    status = models.CharField(max_length=32, choices=Status.choices, blank=True)
    reason = models.CharField(max_length=32, choices=Reason.choices, blank=True)
    sub_status = models.CharField(max_length=32, blank=True)
    raw_status = models.CharField(max_length=200, blank=True)
    occurred_at = models.DateTimeField()
    timed = models.BooleanField(
        default=True, help_text="False when the source gave no time and the receipt time stands in."
    )
    received_at = models.DateTimeField()
    effective_at = models.DateTimeField(null=True, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    eta = models.DateTimeField(null=True, blank=True)
    proof = models.JSONField(null=True, blank=True)
    note = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    event_id = models.CharField(max_length=200, blank=True, help_text="The partner's id for this event.")
    dedupe_key = models.CharField(max_length=64)
    sequence = models.PositiveIntegerField(default=0)
    applied = models.BooleanField(default=True)
    flags = models.JSONField(default=list, blank=True)

    objects = TrackingEventQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shipment", "dedupe_key"], name="trackingevent_unique_fact"),
        ]
        indexes = [
            models.Index(fields=["shipment", "sequence"], name="trackingevent_timeline"),
            # Exports and daily figures read a time range of events across all shipments.
            models.Index(fields=["occurred_at"], name="trackingevent_occurred"),
        ]

    def __str__(self) -> str:
        return f"{self.shipment_id} {self.kind} {self.status or ''} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class OutboundMessage(models.Model):
    """Something Baton sends (customer e-mail or SMS, partner chase, merchant webhook, driver link).

    The outbox: stored in the same transaction as the change that caused it, sent by a task through
    the transport named in `transport`, retried with backoff, every attempt logged, replayable.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        RETRYING = "retrying", "Failed, will retry"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed for good"
        CANCELLED = "cancelled", "Cancelled"

    transport = models.CharField(
        max_length=32, help_text="Registered transport that sends it: email, sms, partner_callback, ..."
    )
    purpose = models.CharField(
        max_length=64, help_text="What it is for, e.g. customer.out_for_delivery, partner.chase."
    )
    shipment = models.ForeignKey(
        Shipment, null=True, blank=True, on_delete=models.CASCADE, related_name="outbound_messages"
    )
    recipient = models.CharField(
        max_length=500, help_text="E-mail address, phone number, URL or partner slug."
    )
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    payload = models.JSONField(
        default=dict, blank=True, help_text="Structured content for machine receivers."
    )
    dedupe_key = models.CharField(
        max_length=200, null=True, blank=True, unique=True, help_text="One message per key, ever."
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    external_id = models.CharField(max_length=200, blank=True, help_text="The provider's id for it.")
    created_at = models.DateTimeField(default=timezone.now)
    replayed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When an operator last sent it again: retries stop OUTBOX_GIVE_UP_SECONDS after this "
        "(after creation if never replayed).",
    )
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="outbound_due"),
            # The contact-centre figures count a day's sent customer messages.
            models.Index(fields=["sent_at"], name="outbound_sent"),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} via {self.transport} to {self.recipient} ({self.state})"

    @property
    def is_settled(self) -> bool:
        return self.state in (self.State.SENT, self.State.FAILED, self.State.CANCELLED)


class DeliveryAttempt(models.Model):
    """One try at sending an outbound message, kept for agents and operations."""

    message = models.ForeignKey(OutboundMessage, on_delete=models.CASCADE, related_name="delivery_attempts")
    attempted_at = models.DateTimeField()
    succeeded = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["attempted_at", "id"]

    def __str__(self) -> str:
        return f"{self.message_id} @ {self.attempted_at:%H:%M:%S} {'ok' if self.succeeded else 'failed'}"


class Activity(models.Model):
    """Baton's own entry on a shipment's timeline: what a rule, an agent, the customer or a driver did.

    Partner facts are `TrackingEvent`s; everything Baton or its users did about the shipment (a chase,
    a customer message, an instruction, a case opened) is an Activity, shown beside them.
    """

    class Actor(models.TextChoices):
        RULE = "rule", "Baton rule"
        AGENT = "agent", "Agent"
        CUSTOMER = "customer", "Customer"
        DRIVER = "driver", "Driver"
        SYSTEM = "system", "Baton"

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="activities")
    occurred_at = models.DateTimeField(default=timezone.now)
    actor = models.CharField(max_length=16, choices=Actor.choices)
    actor_label = models.CharField(max_length=200, blank=True, help_text="Rule name, agent username, ...")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(
        max_length=40,
        help_text="chase, customer_message, notification, instruction, reschedule, cancel_request, "
        "case_opened, case_note, case_resolved, escalation, link_sent, reassigned, replay, ...",
    )
    channel = models.CharField(max_length=32, blank=True, help_text="How it went out, if it did.")
    summary = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    outbound = models.ForeignKey(
        OutboundMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="activities"
    )
    case = models.ForeignKey(
        "contactcentre.Case", null=True, blank=True, on_delete=models.SET_NULL, related_name="activities"
    )

    class Meta:
        ordering = ["occurred_at", "id"]
        verbose_name_plural = "activities"
        indexes = [models.Index(fields=["shipment", "occurred_at"], name="activity_timeline")]

    def __str__(self) -> str:
        return f"{self.shipment_id} {self.kind} by {self.actor_label or self.actor}"

    @property
    def outcome(self) -> str:
        """The outbound message's state when something was sent, else the recorded outcome ("not_sent"
        for a message Baton meant to send and could not, with `details["why"]`), else "done"."""
        if self.outbound_id and self.outbound:
            return self.outbound.state
        return str(self.details.get("outcome") or "done")


WEBHOOK_ENDPOINT_CACHE_SECONDS = 10
_endpoint_cache: dict[str, tuple[list[WebhookEndpoint], float]] = {}


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookEndpoint(models.Model):
    """Where a merchant wants to hear about its shipments, and the secret Baton signs with."""

    EVENT_TYPES = [
        ("shipment.status_changed", "Status changed"),
        ("shipment.eta_changed", "ETA changed"),
        ("shipment.flagged", "Flag raised"),
        ("custody.changed", "Custody changed"),
        ("case.opened", "Case opened"),
        ("case.resolved", "Case resolved"),
    ]

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500, help_text="https:// URL on the public internet.")
    event_types = models.JSONField(default=list, help_text="Event types to send; empty means all.")
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=100, default=new_webhook_secret, help_text="Signing secret.")
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["merchant", "id"]

    def __str__(self) -> str:
        return f"{self.merchant_id} -> {self.url}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        _endpoint_cache.clear()

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        _endpoint_cache.clear()
        return super().delete(*args, **kwargs)

    @classmethod
    def active_for(cls, merchant: str) -> list[WebhookEndpoint]:
        """The merchant's active endpoints, cached in the process for a few seconds.

        Every reconciliation that changes a shipment asks, and most merchants have no endpoint: the
        cache keeps ingest at its query count. A change made here clears it at once; other
        processes see it within WEBHOOK_ENDPOINT_CACHE_SECONDS.
        """
        cached = _endpoint_cache.get(merchant)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        endpoints = list(
            WebhookEndpoint.objects.filter(merchant__slug=merchant, is_active=True).order_by("id")
        )
        _endpoint_cache[merchant] = (endpoints, time.monotonic() + WEBHOOK_ENDPOINT_CACHE_SECONDS)
        return endpoints

    def wants(self, event_type: str) -> bool:
        return self.is_active and (not self.event_types or event_type in self.event_types)

    def signing_secrets(self, now: datetime) -> list[str]:
        """The current secret, and the previous one while its overlap lasts (receivers may hold either)."""
        keep_previous = (
            self.previous_secret
            and self.previous_secret_expires_at is not None
            and self.previous_secret_expires_at > now
        )
        return [self.secret, self.previous_secret] if keep_previous else [self.secret]
