from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from tracking.models import Shipment, TrackingEvent
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


class ShipmentCreateSerializer(serializers.ModelSerializer):
    promised_from = MomentField(required=False, allow_null=True)
    promised_until = MomentField(required=False, allow_null=True)
    latitude = NumberField(min_value=-90, max_value=90, required=False, allow_null=True)
    longitude = NumberField(min_value=-180, max_value=180, required=False, allow_null=True)

    class Meta:
        model = Shipment
        fields = Shipment.ORDER_FIELDS

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("promised_from"), attrs.get("promised_until")
        if start and end and end < start:
            raise serializers.ValidationError({"promised_until": ["Must not be before promised_from."]})
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
    flags = serializers.ListField(child=serializers.CharField(), read_only=True)

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
    last_heard_at = serializers.DateTimeField(allow_null=True, help_text="Latest report from this partner.")


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


class PublicTrackingSerializer(serializers.Serializer):
    reference = serializers.CharField()
    status = serializers.CharField()
    status_label = serializers.CharField()
    reason_label = serializers.CharField(allow_blank=True)
    eta = serializers.DateTimeField(allow_null=True)
    promised_from = serializers.DateTimeField(allow_null=True)
    promised_until = serializers.DateTimeField(allow_null=True)
    postcode_district = serializers.CharField()
    carrier = serializers.CharField(allow_null=True, help_text="Who is delivering (company, never a person).")
    courier_location = LocationSerializer(allow_null=True, help_text="Only while out for delivery.")
    last_update = serializers.DateTimeField(allow_null=True)
    steps = PublicStepSerializer(many=True)
