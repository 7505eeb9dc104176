from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.dateparse import parse_datetime
from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers

from partners.models import Custody, Partner
from tracking.serializers import MomentField, NumberField
from tracking.statuses import EventKind, Reason, Status


class LocationSerializer(serializers.Serializer):
    lat = NumberField(min_value=-90, max_value=90)
    lng = NumberField(min_value=-180, max_value=180)


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a partner cannot set what only Baton decides."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class StrictSerializerScheme(OpenApiSerializerExtension):
    """Tells OpenAPI clients what StrictSerializer enforces: no properties beyond the documented ones."""

    target_class = StrictSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        return schema


class NativeEventSerializer(StrictSerializer):
    reference = serializers.CharField(max_length=128, help_text="Your reference for the job, or ours.")
    event_id = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="Your id for this event (dedupes)."
    )
    kind = serializers.ChoiceField(
        choices=[c for c in EventKind.choices if c[0] != EventKind.HANDOFF], default=EventKind.STATUS
    )
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    reason = serializers.ChoiceField(choices=Reason.choices, required=False)
    sub_status = serializers.CharField(max_length=32, required=False, allow_blank=True)
    raw_status = serializers.CharField(max_length=200, required=False, allow_blank=True)
    occurred_at = MomentField(help_text="When it happened, ISO 8601 with an offset.")
    location = LocationSerializer(required=False)
    eta = MomentField(required=False, allow_null=True)
    proof = serializers.DictField(required=False, help_text="Proof of delivery: photo_url, signed_by...")
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        kind = attrs.get("kind", EventKind.STATUS)
        if kind == EventKind.STATUS and not attrs.get("status"):
            raise serializers.ValidationError({"status": ["Required for a status event."]})
        if kind == EventKind.LOCATION and not attrs.get("location"):
            raise serializers.ValidationError({"location": ["Required for a location event."]})
        if kind == EventKind.ETA and not attrs.get("eta"):
            raise serializers.ValidationError({"eta": ["Required for an ETA event."]})
        return attrs


_QUICK_TEXT = {"event_id": 200, "sub_status": 32, "raw_status": 200, "note": 1000}
_QUICK_KINDS = frozenset(value for value, _label in EventKind.choices if value != EventKind.HANDOFF)
_QUICK_STATUSES = frozenset(Status.values)
_QUICK_REASONS = frozenset(Reason.values)
_QUICK_REQUIRED: dict[str, str] = {
    EventKind.STATUS: "status",
    EventKind.LOCATION: "location",
    EventKind.ETA: "eta",
}


def _plain_text(value: object, longest: int, *, blank: bool) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= longest
        and (blank or bool(value))
        and value == value.strip()
        and value.isprintable()
    )


def _quick_moment(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        moment = parse_datetime(value)
    except ValueError:
        return False
    return moment is not None and moment.tzinfo is not None and 2000 <= moment.year < 9999


def _quick_number(value: object, limit: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and -limit <= value <= limit


def quick_native_event(data: Any) -> bool:
    """True when `NativeEventSerializer` is sure to accept `data`, checked without DRF's machinery.

    Covers the usual single event (a status or a position); anything else, valid or not, answers
    False and goes through the serializer, which also words every error. DRF validation was about
    0.8 ms of a request that should cost little more than its insert.
    """
    if not isinstance(data, dict) or not set(data) <= _QUICK_FIELDS:
        return False
    if not _plain_text(data.get("reference"), 128, blank=False):
        return False
    for name, longest in _QUICK_TEXT.items():
        if name in data and not _plain_text(data[name], longest, blank=True):
            return False
    kind = data.get("kind", EventKind.STATUS)
    if not isinstance(kind, str) or kind not in _QUICK_KINDS:
        return False
    if "status" in data and data["status"] not in _QUICK_STATUSES:
        return False
    if "reason" in data and data["reason"] not in _QUICK_REASONS:
        return False
    if not _quick_moment(data.get("occurred_at")):
        return False
    if "eta" in data and data["eta"] is not None and not _quick_moment(data["eta"]):
        return False
    location = data.get("location")
    if "location" in data and not (
        isinstance(location, dict)
        and set(location) == {"lat", "lng"}
        and _quick_number(location["lat"], 90)
        and _quick_number(location["lng"], 180)
    ):
        return False
    required = _QUICK_REQUIRED.get(kind)
    return required is None or bool(data.get(required))


class NativeBatchSerializer(StrictSerializer):
    events = NativeEventSerializer(many=True, allow_empty=False)

    def validate_events(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        limit = settings.BATON["MAX_BATCH_EVENTS"]
        if len(value) > limit:
            raise serializers.ValidationError(f"At most {limit} events per request.")
        return value


_QUICK_FIELDS = frozenset(NativeEventSerializer._declared_fields) - {"proof"}


class AcceptedSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Events stored for processing.")
    message_id = serializers.IntegerField(help_text="The stored raw message, for support.")


class HandOffSerializer(StrictSerializer):
    reference = serializers.CharField(max_length=128, help_text="Your reference for the job you hand on.")
    to_partner = serializers.SlugRelatedField(
        slug_field="slug", queryset=Partner.objects.filter(is_active=True)
    )
    to_reference = serializers.CharField(max_length=128, help_text="The receiving partner's reference.")
    occurred_at = MomentField(required=False)
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True)


class HandOffConfirmSerializer(StrictSerializer):
    reference = serializers.CharField(
        max_length=128, help_text="The job as the hand-off proposed it, or the merchant's reference."
    )
    partner_reference = serializers.CharField(
        max_length=128, required=False, help_text="Your own reference for the job (default: `reference`)."
    )


class CustodyLinkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    partner = serializers.CharField()
    partner_name = serializers.CharField()
    partner_kind = serializers.CharField()
    partner_reference = serializers.CharField()
    handed_off_by = serializers.IntegerField(allow_null=True)
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    is_current = serializers.BooleanField()
    last_heard_at = serializers.DateTimeField(allow_null=True)


class HandOffResultSerializer(serializers.ModelSerializer):
    partner = serializers.CharField(source="partner.slug")

    class Meta:
        model = Custody
        fields = ["id", "partner", "partner_reference", "reference_confirmed", "started_at", "handed_off_by"]


class UploadRowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="Line number in the file (the header is line 1).")
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]


class UploadReportSerializer(serializers.Serializer):
    message_id = serializers.IntegerField()
    rows = serializers.IntegerField()
    accepted = serializers.IntegerField()
    errors = UploadRowErrorSerializer(many=True)  # type: ignore[assignment]


class AssignmentSerializer(serializers.Serializer):
    partner = serializers.SlugRelatedField(slug_field="slug", queryset=Partner.objects.filter(is_active=True))
    partner_reference = serializers.CharField(
        max_length=128, help_text="The partner's own reference for the job."
    )
    group_reference = serializers.CharField(
        max_length=128,
        required=False,
        allow_blank=True,
        default="",
        help_text=(
            "The partner's route or batch id (Onfleet route, Samsara route id). Route-level events reach "
            "every job of the route that is held and not yet delivered, returned or cancelled at the "
            "event's time. Learned from the partner's own stop events when left empty."
        ),
    )
    vehicle_reference = serializers.CharField(
        max_length=128,
        required=False,
        allow_blank=True,
        default="",
        help_text=(
            "The partner's id of the vehicle the job rides on (Samsara vehicle id). A telematics event "
            "that names only the vehicle (a depot geofence exit) reaches that vehicle's jobs held and "
            "not yet ended at the event's time."
        ),
    )
    started_at = MomentField(required=False, help_text="Defaults to now.")


class AssignmentResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    partner = serializers.CharField(source="partner.slug")
    partner_reference = serializers.CharField()
    group_reference = serializers.CharField()
    vehicle_reference = serializers.CharField()
    started_at = serializers.DateTimeField()
