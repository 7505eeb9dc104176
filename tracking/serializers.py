from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from tracking.models import Merchant, Shipment, TrackingEvent, WebhookEndpoint
from tracking.statuses import Reason, Status


class NumberField(serializers.FloatField):
    """A number; DRF's FloatField would also take true/false and store them as 1.0/0.0."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class MomentField(serializers.DateTimeField):
    """A date and time from 2000 on: older ones are typos, and before 1848 London's offset was not in
    whole minutes, which no ISO 8601 / RFC 3339 client can read back."""

    def to_internal_value(self, value: Any) -> Any:
        moment = super().to_internal_value(value)
        if moment is not None and moment.year < 2000:
            raise serializers.ValidationError("Must be in the year 2000 or later.")
        return moment


class WindowSerializer(serializers.Serializer):
    from_ = MomentField()
    until = MomentField()

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["until"] <= attrs["from"]:
            raise serializers.ValidationError({"until": ["Must be after from."]})
        return {"from": attrs["from"].isoformat(), "until": attrs["until"].isoformat()}


class ConsentSerializer(serializers.Serializer):
    email = serializers.BooleanField(default=False, help_text="Send delivery updates to customer_email.")
    sms = serializers.BooleanField(default=False, help_text="Text delivery updates to customer_phone.")


class ShipmentCreateSerializer(serializers.ModelSerializer):
    promised_from = MomentField(required=False, allow_null=True)
    promised_until = MomentField(required=False, allow_null=True)
    latitude = NumberField(min_value=-90, max_value=90, required=False, allow_null=True)
    longitude = NumberField(min_value=-180, max_value=180, required=False, allow_null=True)
    notify = ConsentSerializer(
        required=False, help_text="Consent the merchant collected for delivery updates (e-mail, SMS)."
    )
    allow_cancel = serializers.BooleanField(
        required=False, default=False, help_text="The customer may ask to cancel until the courier sets off."
    )
    reschedule_options = serializers.ListField(
        child=WindowSerializer(),
        required=False,
        max_length=30,
        help_text="Windows the customer may choose from; empty: mornings and afternoons of the next days.",
    )

    class Meta:
        model = Shipment
        fields = [*Shipment.ORDER_FIELDS, "notify", "allow_cancel", "reschedule_options"]

    def validate_merchant(self, value: str) -> str:
        if not Merchant.objects.filter(slug=value).exists():
            raise serializers.ValidationError("No merchant with this slug; operations register merchants.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("promised_from"), attrs.get("promised_until")
        if start and end and end < start:
            raise serializers.ValidationError({"promised_until": ["Must not be before promised_from."]})
        notify = attrs.pop("notify", None) or {}
        if notify.get("email") and not attrs.get("customer_email"):
            raise serializers.ValidationError({"notify": ["E-mail consent needs customer_email."]})
        if notify.get("sms") and not attrs.get("customer_phone"):
            raise serializers.ValidationError({"notify": ["SMS consent needs customer_phone."]})
        attrs["consent_email"] = bool(notify.get("email"))
        attrs["consent_sms"] = bool(notify.get("sms"))
        return attrs


class ShipmentSerializer(serializers.ModelSerializer):
    current_partner = serializers.CharField(
        source="current_custody.partner.slug", default=None, read_only=True, allow_null=True
    )
    current_partner_reference = serializers.CharField(
        source="current_custody.partner_reference", default=None, read_only=True, allow_null=True
    )
    # Declared because a read-only model field loses allow_blank: "" (no reason, no e-mail) is common.
    reason = serializers.ChoiceField(choices=Reason.choices, allow_blank=True, read_only=True)
    customer_email = serializers.CharField(read_only=True, help_text="An e-mail address, or empty.")
    flags = serializers.ListField(
        child=serializers.CharField(),
        source="all_flags",
        read_only=True,
        help_text="Reconciliation's flags and the sweep's (docs/flags.md), the same in list and detail.",
    )

    class Meta:
        model = Shipment
        fields = [
            *Shipment.ORDER_FIELDS,
            "status",
            "reason",
            "sub_status",
            "status_at",
            "eta",
            "last_event_at",
            "last_heard_at",
            "current_partner",
            "current_partner_reference",
            "flags",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ShipmentCreatedSerializer(ShipmentSerializer):
    tracking_url = serializers.CharField(read_only=True, help_text="The customer's link; shown only now.")

    class Meta(ShipmentSerializer.Meta):
        fields = [*ShipmentSerializer.Meta.fields, "tracking_url"]
        read_only_fields = fields


class CustodyLinkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    partner = serializers.CharField()
    partner_name = serializers.CharField()
    partner_kind = serializers.CharField()
    partner_reference = serializers.CharField()
    handed_off_by = serializers.IntegerField(allow_null=True, help_text="The link that handed the job on.")
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    is_current = serializers.BooleanField()
    last_heard_at = serializers.DateTimeField(
        allow_null=True, help_text="When Baton last received anything from this partner about this job."
    )


class ShipmentDetailSerializer(ShipmentSerializer):
    custody_chain = CustodyLinkSerializer(many=True, read_only=True)
    proof = serializers.JSONField(read_only=True)

    class Meta(ShipmentSerializer.Meta):
        fields = [*ShipmentSerializer.Meta.fields, "proof", "custody_chain"]
        read_only_fields = fields


class LocationSerializer(serializers.Serializer):
    lat = serializers.FloatField()
    lng = serializers.FloatField()


class TimelineEntrySerializer(serializers.ModelSerializer):
    source = serializers.SerializerMethodField()  # type: ignore[assignment]  # the API names it so
    custodian = serializers.SerializerMethodField()
    location = serializers.SerializerMethodField()
    flags = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = TrackingEvent
        fields = [
            "id",
            "sequence",
            "kind",
            "status",
            "reason",
            "sub_status",
            "raw_status",
            "occurred_at",
            "received_at",
            "effective_at",
            "applied",
            "flags",
            "source",
            "custodian",
            "location",
            "eta",
            "proof",
            "note",
            "details",
            "event_id",
        ]

    def get_source(self, event: TrackingEvent) -> dict[str, Any]:
        """Who reported it and through which door."""
        return {
            "partner": event.partner.slug if event.partner else None,
            "partner_name": event.partner.name if event.partner else "Baton",
            "channel": event.message.channel if event.message else None,
            "message_id": event.message_id,
        }

    def get_custodian(self, event: TrackingEvent) -> dict[str, Any] | None:
        """Who held the shipment when it happened."""
        if event.custody is None:
            return None
        return {
            "custody_id": event.custody_id,
            "partner": event.custody.partner.slug,
            "partner_reference": event.custody.partner_reference,
        }

    def get_location(self, event: TrackingEvent) -> dict[str, float] | None:
        if event.latitude is None or event.longitude is None:
            return None
        return {"lat": event.latitude, "lng": event.longitude}


def moment(value: datetime | None) -> str | None:
    """A date and time exactly as DRF's DateTimeField writes it: current time zone, "Z" for UTC."""
    if value is None:
        return None
    text = value.astimezone(timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def timeline_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    """One `TrackingEvent.objects.timeline_rows()` row as `TimelineEntrySerializer` writes it, without DRF.

    The agent timeline is read far more than it is written: a ModelSerializer cost about 7 ms per
    request of a typical shipment, this costs a small fraction of it.
    """
    latitude, longitude = row["latitude"], row["longitude"]
    partner = row["partner__slug"]
    return {
        "id": row["id"],
        "sequence": row["sequence"],
        "kind": row["kind"],
        "status": row["status"],
        "reason": row["reason"],
        "sub_status": row["sub_status"],
        "raw_status": row["raw_status"],
        "occurred_at": moment(row["occurred_at"]),
        "received_at": moment(row["received_at"]),
        "effective_at": moment(row["effective_at"]),
        "applied": row["applied"],
        "flags": [str(flag) for flag in row["flags"]],
        "source": {
            "partner": partner,
            "partner_name": row["partner__name"] if partner is not None else "Baton",
            "channel": row["message__channel"],
            "message_id": row["message_id"],
        },
        "custodian": None
        if row["custody_id"] is None
        else {
            "custody_id": row["custody_id"],
            "partner": row["custody__partner__slug"],
            "partner_reference": row["custody__partner_reference"],
        },
        "location": None if latitude is None or longitude is None else {"lat": latitude, "lng": longitude},
        "eta": moment(row["eta"]),
        "proof": row["proof"],
        "note": row["note"],
        "details": row["details"],
        "event_id": row["event_id"],
    }


def custody_link(link: Mapping[str, Any]) -> dict[str, Any]:
    """One link of `tracking.services.custody_chain` as `CustodyLinkSerializer` writes it."""
    return {
        "id": link["id"],
        "partner": link["partner"],
        "partner_name": link["partner_name"],
        "partner_kind": link["partner_kind"],
        "partner_reference": link["partner_reference"],
        "handed_off_by": link["handed_off_by"],
        "started_at": moment(link["started_at"]),
        "ended_at": moment(link["ended_at"]),
        "is_current": link["is_current"],
        "last_heard_at": moment(link["last_heard_at"]),
    }


def timeline_document(
    shipment: Shipment,
    *,
    flags: Iterable[str],
    chain: Iterable[Mapping[str, Any]],
    rows: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """The agent timeline as `TimelineSerializer` documents it (the schema), built from plain dicts."""
    return {
        "reference": shipment.reference,
        "status": shipment.status,
        "reason": shipment.reason,
        "flags": [str(flag) for flag in flags],
        "custody_chain": [custody_link(link) for link in chain],
        "entries": [timeline_entry(row) for row in rows],
    }


class TimelineSerializer(serializers.Serializer):
    """The schema of the agent timeline; the view writes it with `timeline_document` (same JSON)."""

    reference = serializers.CharField()
    status = serializers.ChoiceField(choices=Status.choices)
    reason = serializers.CharField(allow_blank=True)
    flags = serializers.ListField(child=serializers.CharField())
    custody_chain = CustodyLinkSerializer(many=True)
    entries = TimelineEntrySerializer(many=True)


class PublicStepSerializer(serializers.Serializer):
    status = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    at = serializers.DateTimeField()


class PublicLegSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="A company, never a person.")
    since = serializers.DateTimeField()
    until = serializers.DateTimeField(allow_null=True)


class PublicHolderSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The delivery partner holding the job (company name).")
    since = serializers.DateTimeField()
    current = serializers.BooleanField(help_text="False once the job is finished.")
    text = serializers.CharField(help_text="In words, in the request's language.")
    legs = PublicLegSerializer(many=True, help_text="Every partner that held the job, subcontractors too.")


class PublicMapSerializer(serializers.Serializer):
    x = serializers.FloatField(help_text="0..200, the delivery address at 100.")
    y = serializers.FloatField(help_text="0..200, the delivery address at 100, north up.")
    ring_m = serializers.IntegerField(help_text="Metres the outer ring (radius 90) stands for.")
    ring_label = serializers.CharField()


class PublicNearbySerializer(serializers.Serializer):
    distance_m = serializers.IntegerField(help_text="Rounded to 100 m.")
    text = serializers.CharField()
    seen_at = serializers.DateTimeField()
    map = PublicMapSerializer(
        help_text="The courier's offset from the address for a drawn map (100 m steps)."
    )


class PublicActionsSerializer(serializers.Serializer):
    instructions = serializers.BooleanField()
    reschedule = serializers.BooleanField()
    cancel = serializers.BooleanField()
    report_problem = serializers.BooleanField()
    subscribe = serializers.BooleanField()


class PublicProofSerializer(serializers.Serializer):
    recipient_name = serializers.CharField(allow_blank=True, help_text="First name only.")
    photo_urls = serializers.ListField(child=serializers.CharField())
    signature_url = serializers.CharField(allow_blank=True)
    place = serializers.CharField(allow_blank=True)


class PublicHelpSerializer(serializers.Serializer):
    email = serializers.CharField(allow_blank=True)
    phone = serializers.CharField(allow_blank=True)


class PublicRequestSerializer(serializers.Serializer):
    kind = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    summary = serializers.CharField(allow_blank=True)
    at = serializers.DateTimeField()
    state = serializers.ChoiceField(choices=["done", "recorded", "pending", "sent", "failed"])
    state_text = serializers.CharField(allow_blank=True, help_text="Whether the holder received it.")


class PublicTrackingSerializer(serializers.Serializer):
    reference = serializers.CharField()
    status = serializers.CharField()
    status_label = serializers.CharField()
    status_text = serializers.CharField(help_text="The status in a plain sentence.")
    reason_label = serializers.CharField(allow_blank=True)
    eta = serializers.DateTimeField(allow_null=True, help_text="The holder's own estimate.")
    eta_earliest = serializers.DateTimeField(allow_null=True, help_text="Start of the estimated window.")
    eta_latest = serializers.DateTimeField(allow_null=True, help_text="End of the estimated window.")
    estimate_source = serializers.CharField(allow_blank=True, help_text="partner or baton, or empty.")
    running_late = serializers.BooleanField()
    late_text = serializers.CharField(allow_blank=True, help_text="Running late, with the new estimate.")
    promised_from = serializers.DateTimeField(allow_null=True)
    promised_until = serializers.DateTimeField(allow_null=True)
    postcode_district = serializers.CharField()
    carrier = serializers.CharField(allow_null=True, help_text="Who is delivering (company, never a person).")
    holder = PublicHolderSerializer(allow_null=True)
    next_steps = serializers.ListField(
        child=serializers.CharField(), help_text="After a failed attempt or a problem: what happens next."
    )
    actions = PublicActionsSerializer(help_text="What the customer may do now.")
    courier_location = LocationSerializer(
        allow_null=True, help_text="Deprecated: always null; coordinates are not published (courier_nearby)."
    )
    courier_nearby = PublicNearbySerializer(
        allow_null=True, help_text="Only while out for delivery, near and recently seen."
    )
    proof_available = serializers.BooleanField(
        help_text="Proof of delivery exists (shown after a second factor)."
    )
    proof = PublicProofSerializer(allow_null=True, help_text="Only on the page, after reference + postcode.")
    help = PublicHelpSerializer()
    requests = PublicRequestSerializer(
        many=True, help_text="What the customer asked, and whether the holder got it."
    )
    last_update = serializers.DateTimeField(allow_null=True)
    steps = PublicStepSerializer(many=True)


class WebhookEndpointCreateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=500)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEndpoint.EVENT_TYPES),
        required=False,
        default=list,
        help_text="Event types to send; empty means all.",
    )
    description = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class WebhookEndpointSerializer(serializers.ModelSerializer):
    merchant = serializers.CharField(source="merchant.slug", read_only=True)
    event_types = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "merchant",
            "url",
            "event_types",
            "description",
            "is_active",
            "disabled_at",
            "disabled_reason",
            "previous_secret_expires_at",
            "created_at",
        ]
        read_only_fields = fields


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="The signing secret; shown only now.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class RotateSecretSerializer(serializers.Serializer):
    overlap_hours = serializers.IntegerField(
        min_value=0, max_value=168, default=24, help_text="Hours the old secret keeps signing."
    )
