from __future__ import annotations

import hashlib
import secrets
import time
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper

API_KEY_CACHE_SECONDS = 10
# Bounded: a client trying random keys must not grow every web process's memory without end.
API_KEY_CACHE_MAX_ENTRIES = 4096
_api_key_cache: dict[str, tuple[Partner | None, float]] = {}


def _remember_api_key(key_hash: str, partner: Partner | None) -> None:
    now = time.monotonic()
    if len(_api_key_cache) >= API_KEY_CACHE_MAX_ENTRIES:
        for stale in [k for k, (_, until) in list(_api_key_cache.items()) if until <= now]:
            _api_key_cache.pop(stale, None)
        while len(_api_key_cache) >= API_KEY_CACHE_MAX_ENTRIES:  # still full: forget the oldest entries
            _api_key_cache.pop(next(iter(_api_key_cache)), None)
    _api_key_cache[key_hash] = (partner, now + API_KEY_CACHE_SECONDS)


def hash_api_key(key: str) -> str:
    # API keys carry 256 random bits, so a fast hash is enough to make a stolen table useless.
    return hashlib.sha256(key.encode()).hexdigest()


class Partner(models.Model):
    """An organisation that can hold shipments, with the adapter that speaks its format."""

    class Kind(models.TextChoices):
        FLEET = "fleet", "First-party fleet"
        SUBCONTRACTOR = "subcontractor", "Subcontractor"
        CARRIER = "carrier", "Parcel carrier"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    adapter = models.CharField(max_length=32, help_text="Name of the adapter in partners.adapters.")
    api_key_hash = models.CharField(max_length=64, unique=True, editable=False)
    api_key_prefix = models.CharField(max_length=12, editable=False, help_text="To tell keys apart.")
    webhook_secret = models.CharField(max_length=512, blank=True, help_text="As the vendor issued it.")
    previous_webhook_secret = models.CharField(
        max_length=512, blank=True, help_text="Still accepted while the vendor rotates to the new secret."
    )
    timezone = models.CharField(
        max_length=64, default="Europe/London", help_text="For partner times that carry no offset."
    )
    config = models.JSONField(default=dict, blank=True, help_text="Pull API settings (api_key, base_url).")
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    sends_driver_links = models.BooleanField(
        default=False,
        help_text="Send this partner a driver link for every job it is given (no system needed).",
    )
    driver_contact = models.CharField(
        max_length=254, blank=True, help_text="Phone number or e-mail address driver links are sent to."
    )
    driver_handoff_partners = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="+",
        help_text="Partners this partner's drivers may hand a job on to from the driver link.",
    )
    # How Baton reaches the partner about a job (customer instructions, chases): its callback (native
    # partners), its vendor API where the adapter can update a delivery, else its operations contact.
    callback_url = models.URLField(
        max_length=500, blank=True, help_text="Native partners: Baton POSTs signed JSON updates here."
    )
    callback_secret = models.CharField(
        max_length=128,
        blank=True,
        help_text="Signs callbacks (X-Baton-Signature: sha256=<hex HMAC of the body>).",
    )
    ops_email = models.EmailField(blank=True, help_text="The partner's operations contact, by e-mail.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.callback_url and not self.callback_secret:
            self.callback_secret = secrets.token_hex(32)
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "callback_secret"}
        super().save(*args, **kwargs)
        _api_key_cache.clear()

    def clean(self) -> None:
        """A callback URL must be public (Baton re-checks before every call too)."""
        from tracking.outbox import UnsafeURL, check_public_url

        if self.callback_url:
            try:
                check_public_url(self.callback_url)
            except UnsafeURL as exc:
                raise ValidationError({"callback_url": str(exc)}) from exc

    @classmethod
    def for_api_key(cls, key: str) -> Partner | None:
        """The active partner with this API key, cached in the process for a few seconds.

        Every partner request authenticates, so the cache saves a query on the hot path; a revoked
        key stops working in this process at once and in other processes within API_KEY_CACHE_SECONDS.
        """
        key_hash = hash_api_key(key)
        cached = _api_key_cache.get(key_hash)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        partner = cls.objects.filter(api_key_hash=key_hash, is_active=True).first()
        _remember_api_key(key_hash, partner)
        return partner

    def rotate_api_key(self) -> str:
        """Set a new API key and return it; only its hash is stored, so it can be shown once."""
        key = f"bt_{secrets.token_urlsafe(32)}"
        self.api_key_hash = hash_api_key(key)
        self.api_key_prefix = key[:10]
        return key

    @property
    def webhook_secrets(self) -> list[str]:
        return [s for s in (self.webhook_secret, self.previous_webhook_secret) if s]

    @property
    def tzinfo(self) -> tzinfo:
        return ZoneInfo(self.timezone)


class CustodyQuerySet(models.QuerySet["Custody"]):
    def open(self) -> CustodyQuerySet:
        return self.filter(ended_at__isnull=True)

    def held_at(self, moment: datetime) -> CustodyQuerySet:
        return self.filter(Q(ended_at__isnull=True) | Q(ended_at__gt=moment), started_at__lte=moment)


class Custody(models.Model):
    """The interval during which a partner holds a shipment, under the partner's own reference."""

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="custodies")
    shipment = models.ForeignKey("tracking.Shipment", on_delete=models.CASCADE, related_name="custody")
    partner_reference = models.CharField(max_length=128)
    group_reference = models.CharField(
        max_length=128, blank=True, db_index=True, help_text="Route or batch the job belongs to."
    )
    vehicle_reference = models.CharField(
        max_length=128,
        blank=True,
        db_index=True,
        help_text="The partner's id of the vehicle the job rides on.",
    )
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    handed_off_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="handed_to"
    )
    reference_confirmed = models.BooleanField(
        default=True,
        help_text="False while the reference is only the handing-off partner's proposal: the receiver "
        "confirms it (or operations assign one) before reports under it are matched.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CustodyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "custodies"
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["shipment"], condition=Q(ended_at__isnull=True), name="custody_one_open_per_shipment"
            ),
            models.UniqueConstraint(
                fields=["partner", "partner_reference"],
                condition=Q(ended_at__isnull=True, reference_confirmed=True),
                name="custody_open_reference_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["partner", "partner_reference"], name="custody_partner_ref"),
            # Agents search partner references whatever their case.
            models.Index(Upper("partner_reference"), name="custody_reference_upper"),
        ]

    def __str__(self) -> str:
        return f"{self.partner} holds {self.shipment_id} as {self.partner_reference}"


class InboundMessage(models.Model):
    """The raw bytes a partner sent, stored before anything else happens (the outbox of ingest)."""

    class Channel(models.TextChoices):
        API = "api", "Partner API"
        WEBHOOK = "webhook", "Vendor webhook"
        UPLOAD = "upload", "CSV upload"
        POLL = "poll", "Polled"
        HANDOFF = "handoff", "Hand-off"
        DRIVER_LINK = "driver_link", "Driver link"

    class State(models.TextChoices):
        RECEIVED = "received", "Received, waiting to be processed"
        PROCESSED = "processed", "Processed"
        UNMATCHED = "unmatched", "No shipment matched yet (replayed when an assignment appears)"
        FAILED = "failed", "Could not be parsed"
        REJECTED = "rejected", "Rejected at the door"

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="messages")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    body = models.BinaryField()
    headers = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=64, db_index=True)
    received_at = models.DateTimeField(db_index=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RECEIVED)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0, help_text="Failed attempts since the last replay.")
    retry_at = models.DateTimeField(
        null=True, blank=True, help_text="After a failed attempt: not swept again before this time."
    )
    unmatched_references = models.TextField(
        blank=True, help_text="References no shipment matched, as |A|B|: replayed when one appears."
    )
    events_recorded = models.PositiveIntegerField(default=0)
    report = models.JSONField(
        null=True,
        blank=True,
        help_text="An upload's refused rows, [[line, field, message], ...]: the full report it links to.",
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    request_id = models.CharField(
        max_length=128,
        blank=True,
        help_text="X-Request-ID of the request that brought it (to follow in logs).",
    )

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["state", "received_at"], name="inbound_state_received"),
            models.Index(fields=["partner", "state"], name="inbound_partner_state"),
        ]

    def __str__(self) -> str:
        return f"{self.partner_id} {self.channel} {self.received_at:%Y-%m-%d %H:%M:%S} {self.state}"


class IdempotencyKey(models.Model):
    """A partner's `Idempotency-Key`: the same key and body get the same response."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty while running.")
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["partner", "key"], name="idempotency_key_unique")]

    def __str__(self) -> str:
        return f"{self.partner_id}:{self.key}"


class DriverLinkQuerySet(models.QuerySet["DriverLink"]):
    def usable(self, now: datetime) -> DriverLinkQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=now)


class DriverLink(models.Model):
    """A signed, expiring link that lets a contractor with no system report on the jobs it holds.

    One link per custody (one job), or per route: the partner's open jobs with the same
    `group_reference`. Only the token's hash is stored; the link is shown once, when it is sent.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="driver_links")
    custody = models.ForeignKey(
        Custody, null=True, blank=True, on_delete=models.CASCADE, related_name="driver_links"
    )
    group_reference = models.CharField(max_length=128, blank=True, help_text="The route, for a route link.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    sent_to = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(
        help_text="Hard limit; the link also ends a grace period after its jobs."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = DriverLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(custody__isnull=False) | ~Q(group_reference=""), name="driverlink_job_or_route"
            )
        ]

    def __str__(self) -> str:
        target = f"job {self.custody_id}" if self.custody_id else f"route {self.group_reference}"
        return f"Driver link for {self.partner} ({target})"


# Upper bounds (seconds) of the update-latency buckets; the last bucket is open-ended.
LATENCY_BUCKETS = [5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600]
# The area (and band) of PartnerDayFigures rows that sum every area (band): not a postcode district.
ANY = "*"


class PartnerDayFigures(models.Model):
    """One partner's jobs started on one day in one area and time band: counts that add up across rows.

    Written by `partners.services.scorecards.materialise_day` (a beat job); the scorecard pages sum rows,
    so every figure is a count or a total, never a ratio. Message counts (which have no area) sit in the
    row with area "" and band "". Rows with area ANY sum every area (per band, and with band ANY per
    partner), so a page over every area reads one row per partner and day.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="day_figures")
    day = models.DateField()
    area = models.CharField(max_length=8, blank=True, help_text="Postcode district.")
    band = models.CharField(max_length=10, blank=True, help_text="morning, afternoon or evening.")
    jobs = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    with_window = models.PositiveIntegerField(default=0, help_text="Delivered jobs with a promised window.")
    on_time = models.PositiveIntegerField(default=0)
    attempted = models.PositiveIntegerField(default=0, help_text="Jobs delivered or with a failed attempt.")
    first_attempt = models.PositiveIntegerField(default=0)
    with_proof = models.PositiveIntegerField(default=0)
    handed_on = models.PositiveIntegerField(default=0)
    cases = models.PositiveIntegerField(default=0)
    silent_seconds = models.BigIntegerField(default=0)
    events = models.PositiveIntegerField(default=0)
    conflicts = models.PositiveIntegerField(default=0)
    messages = models.PositiveIntegerField(default=0)
    unmatched = models.PositiveIntegerField(default=0)
    # Update latency (received - occurred) histogram, one column per LATENCY_BUCKETS bucket (summable).
    lat_0 = models.PositiveIntegerField(default=0, help_text="Events with latency <= 5 s.")
    lat_1 = models.PositiveIntegerField(default=0, help_text="Events with latency in (5, 15] s.")
    lat_2 = models.PositiveIntegerField(default=0, help_text="Events with latency in (15, 30] s.")
    lat_3 = models.PositiveIntegerField(default=0, help_text="Events with latency in (30, 60] s.")
    lat_4 = models.PositiveIntegerField(default=0, help_text="Events with latency in (60, 120] s.")
    lat_5 = models.PositiveIntegerField(default=0, help_text="Events with latency in (120, 300] s.")
    lat_6 = models.PositiveIntegerField(default=0, help_text="Events with latency in (300, 600] s.")
    lat_7 = models.PositiveIntegerField(default=0, help_text="Events with latency in (600, 1800] s.")
    lat_8 = models.PositiveIntegerField(default=0, help_text="Events with latency in (1800, 3600] s.")
    lat_9 = models.PositiveIntegerField(default=0, help_text="Events with latency in (3600, 7200] s.")
    lat_10 = models.PositiveIntegerField(default=0, help_text="Events with latency in (7200, 21600] s.")
    lat_11 = models.PositiveIntegerField(default=0, help_text="Events with latency > 21600 s.")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "day", "area", "band"], name="partner_day_figures_unique"
            )
        ]
        indexes = [
            models.Index(fields=["day", "partner"], name="partner_day_figures_day"),
            # A page reads one selection (an area's rows or the rollups) over a range of days.
            models.Index(fields=["area", "band", "day"], name="partner_day_figures_scope"),
        ]

    def __str__(self) -> str:
        return f"{self.partner_id} {self.day} {self.area or '-'} {self.band or '-'}"


class SilenceThreshold(models.Model):
    """How long a holder may stay silent before the sweep calls the job a blind spot.

    A row applies to one partner, or to every partner of a kind, or (neither set) to every partner;
    and to one status, to a job not yet acknowledged, or (status empty) to any status. The most
    specific row wins: partner before kind before everyone, a status before any status. With no row
    at all, `BATON["SILENCE_THRESHOLD_SECONDS"]` applies. See `partners.services.sweep.thresholds`.
    """

    UNACKNOWLEDGED = "unacknowledged"

    partner = models.ForeignKey(
        Partner,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="silence_thresholds",
        help_text="Only this partner (overrides its kind's thresholds).",
    )
    partner_kind = models.CharField(
        max_length=16,
        choices=Partner.Kind.choices,
        blank=True,
        help_text="Every partner of this kind. Leave empty when a partner is chosen, or for everyone.",
    )
    status = models.CharField(
        max_length=32,
        blank=True,
        help_text="The job's status while silent; 'unacknowledged': assigned or handed on and never "
        "reported by the new holder. Empty: any status.",
    )
    minutes = models.PositiveIntegerField(help_text="Silence longer than this raises the flag.")

    class Meta:
        ordering = ["partner_id", "partner_kind", "status"]
        constraints = [
            models.CheckConstraint(condition=Q(minutes__gt=0), name="silence_threshold_positive"),
            models.CheckConstraint(
                condition=Q(partner__isnull=True) | Q(partner_kind=""),
                name="silence_threshold_partner_or_kind",
            ),
            models.UniqueConstraint(
                fields=["partner", "status"],
                condition=Q(partner__isnull=False),
                name="silence_threshold_partner_status_unique",
            ),
            models.UniqueConstraint(
                fields=["partner_kind", "status"],
                condition=Q(partner__isnull=True),
                name="silence_threshold_kind_status_unique",
            ),
        ]

    def __str__(self) -> str:
        who = str(self.partner) if self.partner_id else (self.get_partner_kind_display() or "Every partner")
        return f"{who}, {self.status or 'any status'}: {self.minutes} min"

    @classmethod
    def status_choices(cls) -> list[tuple[str, str]]:
        from tracking.statuses import TERMINAL_STATUSES, Status

        open_statuses = [(value, label) for value, label in Status.choices if value not in TERMINAL_STATUSES]
        return [("", "Any status"), (cls.UNACKNOWLEDGED, "Not acknowledged yet"), *open_statuses]

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.partner_id and self.partner_kind:
            errors["partner_kind"] = (
                "Choose a partner or a kind, not both: a partner's own row overrides its kind."
            )
        if self.status not in {value for value, _label in self.status_choices()}:
            errors["status"] = "Choose an open status, 'unacknowledged', or leave empty for any status."
        if not self.minutes or self.minutes <= 0:
            errors["minutes"] = "A threshold must be at least one minute."
        if errors:
            raise ValidationError(errors)


class StageDuration(models.Model):
    """Learned from history: how long jobs took from reaching a status to delivery (p50/p90).

    One row per partner and status, one per partner kind and status (partner empty) as the fallback
    for partners with too little history, and one per status over every partner (both empty) as the
    last fallback. Refreshed by a beat job (`partners.services.eta`).
    """

    partner = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.CASCADE, related_name="stage_durations"
    )
    partner_kind = models.CharField(max_length=16, choices=Partner.Kind.choices, blank=True)
    status = models.CharField(max_length=32)
    samples = models.PositiveIntegerField()
    p50_seconds = models.PositiveIntegerField()
    p90_seconds = models.PositiveIntegerField()
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "status"],
                condition=Q(partner__isnull=False),
                name="stage_duration_partner_status_unique",
            ),
            models.UniqueConstraint(
                fields=["partner_kind", "status"],
                condition=Q(partner__isnull=True),
                name="stage_duration_kind_status_unique",
            ),
        ]

    def __str__(self) -> str:
        who = str(self.partner) if self.partner_id else (self.get_partner_kind_display() or "Every partner")
        return f"{who} from {self.status}: p50 {self.p50_seconds} s, p90 {self.p90_seconds} s"
