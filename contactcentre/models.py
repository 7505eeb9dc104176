"""Cases: one agent owns a customer's problem about a shipment from first contact to closure."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from partners.models import Partner
from tracking.flags import SWEEP_FLAGS, Flag


class Case(models.Model):
    class Channel(models.TextChoices):
        PHONE = "phone", "Phone"
        EMAIL = "email", "E-mail"
        CHAT = "chat", "Chat"
        SOCIAL = "social", "Social media"
        WEB = "web", "Customer tracking page"
        PROACTIVE = "proactive", "Proactive (Baton rule)"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        WAITING_ON_PARTNER = "waiting_on_partner", "Waiting on partner"
        WAITING_ON_CUSTOMER = "waiting_on_customer", "Waiting on customer"
        RESOLVED = "resolved", "Resolved"

    class Reason(models.TextChoices):
        WHERE_IS_MY_ORDER = "where_is_my_order", "Where is my order"
        LATE = "late", "Running late"
        FAILED_ATTEMPT = "failed_attempt", "Failed delivery attempt"
        DAMAGED = "damaged", "Damaged goods"
        NOT_RECEIVED = "not_received", "Marked delivered, not received"
        INSTRUCTIONS = "instructions", "Delivery instructions"
        RESCHEDULE = "reschedule", "Reschedule"
        CANCEL = "cancel", "Cancellation"
        COMPLAINT = "complaint", "Complaint"
        HOLDER_SILENT = "holder_silent", "Holder not reporting"
        OTHER = "other", "Other"

    class Resolution(models.TextChoices):
        INFORMED = "informed", "Customer informed"
        DELIVERED = "delivered", "Delivered"
        REDELIVERY_BOOKED = "redelivery_booked", "Redelivery booked"
        PARTNER_FIXED = "partner_fixed", "Partner put it right"
        REFUND_OR_REPLACEMENT = "refund_or_replacement", "Refund or replacement"
        CANCELLED = "cancelled", "Cancelled"
        NO_ACTION_NEEDED = "no_action_needed", "No action needed"

    shipment = models.ForeignKey(
        "tracking.Shipment", null=True, blank=True, on_delete=models.PROTECT, related_name="cases"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    reason = models.CharField(max_length=32, choices=Reason.choices)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.OPEN, db_index=True)
    summary = models.CharField(max_length=300, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="cases"
    )
    escalated = models.BooleanField(default=False, help_text="In the supervisors' queue.")
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_by_rule = models.CharField(
        max_length=100, blank=True, help_text="The rule that opened it, if one."
    )
    contact_name = models.CharField(max_length=200, blank=True)
    contact_detail = models.CharField(max_length=200, blank=True, help_text="Phone or e-mail of the contact.")
    sla_due_at = models.DateTimeField(db_index=True)
    resolution = models.CharField(max_length=32, choices=Resolution.choices, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sla_due_at", "id"]
        permissions = [
            ("use_console", "Can use the agent console"),
            ("supervise", "Can supervise cases and agents"),
            ("operate", "Can run operations (reassign, replay, scorecards, exports)"),
        ]
        # The console's case queues (contactcentre.queues.cases), each listed soonest SLA first from an
        # index of open cases only: the predicate is the queue's own `exclude(status=RESOLVED)`.
        indexes = [
            models.Index(fields=["status", "owner"], name="case_queue"),
            models.Index(
                fields=["owner", "sla_due_at", "id"],
                condition=~models.Q(status="resolved"),
                name="case_queue_open_by_owner",
            ),
            models.Index(
                fields=["sla_due_at", "id"],
                condition=~models.Q(status="resolved"),
                name="case_queue_open_by_sla",
            ),
            models.Index(
                fields=["sla_due_at", "id"],
                condition=models.Q(escalated=True) & ~models.Q(status="resolved"),
                name="case_queue_escalated",
            ),
        ]

    def __str__(self) -> str:
        return f"Case {self.pk} ({self.get_status_display()})"

    @property
    def is_open(self) -> bool:
        return self.status != self.Status.RESOLVED

    def is_past_sla(self, now: Any = None) -> bool:
        return self.is_open and self.sla_due_at < (now or timezone.now())

    @staticmethod
    def default_sla_due(opened_at: Any = None) -> Any:
        return (opened_at or timezone.now()) + timedelta(hours=settings.BATON["CASE_SLA_HOURS"])


class CaseNote(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    body = models.TextField()
    visible_to_customer = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Note on case {self.case_id}"


class CaseEvent(models.Model):
    """The case's audit history: who did what, when. Written once, never edited."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="history")
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=200, help_text="Username, rule name or 'customer'.")
    action = models.CharField(
        max_length=40,
        help_text="opened, assigned, note, status, escalated, handed_over, resolved, reopened, action",
    )
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.case_id} {self.action} by {self.actor_label}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("a case's history cannot be edited")
        super().save(*args, **kwargs)


class Subscription(models.Model):
    """A customer's consent to delivery updates on one channel, from the tracking page or the merchant."""

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        SMS = "sms", "SMS"

    class Source(models.TextChoices):
        PAGE = "page", "Tracking page"
        MERCHANT = "merchant", "Merchant (consent at order)"

    shipment = models.ForeignKey("tracking.Shipment", on_delete=models.CASCADE, related_name="subscriptions")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    address = models.CharField(max_length=254, help_text="E-mail address or phone number.")
    source = models.CharField(max_length=16, choices=Source.choices)
    time_zone = models.CharField(max_length=64, blank=True, help_text="For quiet hours; empty: TIME_ZONE.")
    language = models.CharField(max_length=16, blank=True, help_text="The page's language when subscribing.")
    created_at = models.DateTimeField(default=timezone.now)
    last_notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the latest message was due, for the minimum gap."
    )
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["shipment", "channel", "address"], name="subscription_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} updates for {self.shipment_id}"

    @property
    def is_active(self) -> bool:
        return self.unsubscribed_at is None


class MessageTemplate(models.Model):
    """The words of one kind of customer message, editable by operations (Django template syntax)."""

    class Purpose(models.TextChoices):
        OUT_FOR_DELIVERY = "out_for_delivery", "Out for delivery"
        ARRIVING = "arriving", "Arriving soon"
        ATTEMPT_FAILED = "attempt_failed", "Delivery attempt failed"
        RUNNING_LATE = "running_late", "Running late"
        DELIVERED = "delivered", "Delivered"
        AGENT_MESSAGE = "agent_message", "Message from an agent"

    purpose = models.CharField(max_length=32, choices=Purpose.choices, unique=True)
    subject = models.CharField(max_length=200, help_text="E-mail subject.")
    email_body = models.TextField(help_text="Plain-text e-mail; the unsubscribe link is added below it.")
    sms_body = models.CharField(max_length=480, help_text="Text message; the unsubscribe link is added.")
    is_active = models.BooleanField(default=True, help_text="Off: this kind of message is not sent.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["purpose"]

    def __str__(self) -> str:
        return self.get_purpose_display()


# The sweep's flags a rule can act on, in the sweep's order (tracking.flags.SWEEP_FLAGS).
SWEEP_FLAG_CHOICES = [
    (flag.value, flag.label)
    for flag in (Flag.STALE_CUSTODIAN, Flag.UNACKNOWLEDGED, Flag.ETA_PASSED, Flag.LATE_RISK)
]
# Silence: the holder has not spoken. Escalation counts episodes of these on the same custody.
SILENCE_FLAGS = frozenset({Flag.STALE_CUSTODIAN.value, Flag.UNACKNOWLEDGED.value})


class ActionRule(models.Model):
    """Operations' rule: when the sweep raises a flag on a shipment, Baton acts (once per episode).

    Evaluated by `contactcentre.proactive` when a flag is raised; each action it takes is recorded
    on the shipment's timeline (`tracking.Activity`) and in `ProactiveAction`, which makes it
    idempotent: one chase per silence, not one per sweep. A rule for a partner kind overrides the
    rule for every holder with the same flag and action (switched off, it switches that action off
    for that kind). See docs/flags.md.
    """

    class Action(models.TextChoices):
        NOTIFY_CUSTOMER = "notify_customer", "Notify the customer"
        QUEUE = "queue", "Put the shipment in the agents' queue"
        CHASE = "chase", "Chase the holder on its own channel"
        ESCALATE = "escalate", "Escalate to supervisors (after a second silence)"

    ACTIONS_FOR_SILENCE = frozenset({Action.ESCALATE})
    ACTIONS_FOR_LATENESS = frozenset({Action.NOTIFY_CUSTOMER})

    name = models.CharField(max_length=100, unique=True)
    flag = models.CharField(
        max_length=32,
        choices=SWEEP_FLAG_CHOICES,
        help_text="The sweep's flag that triggers it.",
    )
    action = models.CharField(max_length=20, choices=Action.choices)
    partner_kind = models.CharField(
        max_length=16,
        blank=True,
        choices=Partner.Kind.choices,
        help_text="Only for holders of this kind (empty: every holder). A kind's rule overrides the "
        "rule for every holder with the same flag and action.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["flag", "name"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(action=""), name="action_rule_has_action"),
            models.UniqueConstraint(
                fields=["flag", "action", "partner_kind"],
                name="action_rule_one_per_flag_action_kind",
                violation_error_message="There is already a rule for this flag, action and partner kind: "
                "edit that one.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.flag not in SWEEP_FLAGS:
            errors["flag"] = f"Choose one of the sweep's flags: {', '.join(sorted(SWEEP_FLAGS))}."
        if self.action not in self.Action.values:
            errors["action"] = "A rule needs an action."
        elif (
            self.flag in SWEEP_FLAGS
            and self.action in self.ACTIONS_FOR_SILENCE
            and self.flag not in SILENCE_FLAGS
        ):
            errors["action"] = (
                "Escalation follows a second silence: use it with 'Holder silent' or "
                "'Holder never acknowledged'."
            )
        elif self.flag in SILENCE_FLAGS and self.action in self.ACTIONS_FOR_LATENESS:
            errors["action"] = (
                "The customer is told their delivery is running late: use it with 'ETA passed' or "
                "'At risk of being late' (a holder's silence alone is not news for the customer)."
            )
        if self.partner_kind and self.partner_kind not in Partner.Kind.values:
            errors["partner_kind"] = "Unknown partner kind."
        if errors:
            raise ValidationError(errors)


class ProactiveAction(models.Model):
    """One action a rule took on one shipment for one episode of a flag (the idempotency record)."""

    rule = models.ForeignKey(ActionRule, on_delete=models.CASCADE, related_name="actions")
    shipment = models.ForeignKey("tracking.Shipment", on_delete=models.CASCADE, related_name="+")
    flag = models.CharField(max_length=32, blank=True, help_text="The flag that was raised.")
    episode = models.CharField(
        max_length=128,
        help_text="What makes this occurrence of the flag one episode (docs/flags.md), e.g. the custody "
        "and when its holder was last heard.",
    )
    outcome = models.CharField(max_length=300, blank=True)
    activity = models.ForeignKey(
        "tracking.Activity", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "shipment", "episode"], name="proactive_action_once_per_episode"
            )
        ]
        indexes = [models.Index(fields=["shipment", "flag"], name="proactive_action_shipment")]

    def __str__(self) -> str:
        return f"{self.rule} on {self.shipment_id} ({self.episode})"


# Time-to-close histogram bounds (seconds): 15 and 30 min, 1, 2, 4, 8, 24, 48, 72 h, a week; then beyond.
CLOSE_BUCKETS = [900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 259200, 604800]


class ContactDayFigures(models.Model):
    """Contact-centre counts for one local day: for everyone (partner empty) or one partner's share.

    Written by `contactcentre.figures.materialise_day` (a beat job); the dashboard sums rows, so every
    figure is a count or a total. A partner's share is what happened while it held the shipment: its
    contacts, their resolutions and the proactive messages sent; its `shipments` are the jobs it took.
    What happened while nobody held a shipment is only in the everyone row.
    """

    day = models.DateField()
    partner = models.ForeignKey(
        "partners.Partner", null=True, blank=True, on_delete=models.CASCADE, related_name="contact_figures"
    )
    shipments = models.PositiveIntegerField(
        default=0, help_text="Shipments created (everyone row) or jobs the partner took (partner rows)."
    )
    contacts = models.PositiveIntegerField(default=0, help_text="Cases opened from a customer channel.")
    wismo = models.PositiveIntegerField(default=0, help_text="Contacts asking where the order is.")
    resolved = models.PositiveIntegerField(default=0, help_text="Contacts resolved that day.")
    first_contact = models.PositiveIntegerField(default=0, help_text="Of those, resolved at first contact.")
    close_seconds = models.BigIntegerField(default=0, help_text="Total time from opening to resolution.")
    proactive_sent = models.PositiveIntegerField(default=0, help_text="Baton's own customer messages sent.")
    contacts_after_proactive = models.PositiveIntegerField(
        default=0, help_text="Proactive messages followed by a contact on the same shipment within 24 h."
    )
    # Time to close, one column per CLOSE_BUCKETS bucket (summable, for the median).
    close_0 = models.PositiveIntegerField(default=0, help_text="Closed within 15 min.")
    close_1 = models.PositiveIntegerField(default=0, help_text="Closed in (15, 30] min.")
    close_2 = models.PositiveIntegerField(default=0, help_text="Closed in (30, 60] min.")
    close_3 = models.PositiveIntegerField(default=0, help_text="Closed in (1, 2] h.")
    close_4 = models.PositiveIntegerField(default=0, help_text="Closed in (2, 4] h.")
    close_5 = models.PositiveIntegerField(default=0, help_text="Closed in (4, 8] h.")
    close_6 = models.PositiveIntegerField(default=0, help_text="Closed in (8, 24] h.")
    close_7 = models.PositiveIntegerField(default=0, help_text="Closed in (24, 48] h.")
    close_8 = models.PositiveIntegerField(default=0, help_text="Closed in (48, 72] h.")
    close_9 = models.PositiveIntegerField(default=0, help_text="Closed in (72 h, a week].")
    close_10 = models.PositiveIntegerField(default=0, help_text="Closed after more than a week.")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "partner"],
                condition=models.Q(partner__isnull=False),
                name="contact_day_figures_partner_unique",
            ),
            models.UniqueConstraint(
                fields=["day"],
                condition=models.Q(partner__isnull=True),
                name="contact_day_figures_day_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.partner_id or 'everyone'}"
