from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers

from partners.adapters.native import KINDS, MOMENT_FORMAT
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
    """The event's shape for OpenAPI; `partners.adapters.native.parse_event` decides what is accepted
    (the API, the upload and the worker all call it), and a test keeps the two to the same fields."""

    reference = serializers.CharField(
        max_length=128, help_text="Your reference for the job, or ours; matched exactly (no spaces around)."
    )
    event_id = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="Your id for this event (dedupes)."
    )
    kind = serializers.ChoiceField(
        choices=[c for c in EventKind.choices if c[0] in KINDS], default=EventKind.STATUS
    )
    status = serializers.ChoiceField(
        choices=Status.choices, required=False, help_text="Required for a status event."
    )
    reason = serializers.ChoiceField(choices=Reason.choices, required=False)
    sub_status = serializers.CharField(max_length=32, required=False, allow_blank=True)
    raw_status = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="Default: the status, else the kind."
    )
    occurred_at = MomentField(help_text=f"When it happened: {MOMENT_FORMAT}, with its offset.")
    location = LocationSerializer(required=False, help_text="Required for a location event.")
    eta = MomentField(required=False, allow_null=True, help_text="Required for an ETA event.")
    proof = serializers.DictField(required=False, help_text="Proof of delivery: photo_url, signed_by...")
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True, help_text="Kept as sent.")


class NativeBatchSerializer(StrictSerializer):
    events = NativeEventSerializer(many=True, allow_empty=False, help_text="At most BATON_MAX_BATCH_EVENTS.")


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
    accepted = serializers.IntegerField(help_text="Rows that will be recorded.")
    refused = serializers.IntegerField(help_text="Rows refused; none of them is recorded.")
    errors = UploadRowErrorSerializer(  # type: ignore[assignment]
        many=True, help_text="The first BATON_UPLOAD_ERRORS_SHOWN refused rows (20 by default)."
    )
    errors_by_field = serializers.DictField(
        child=serializers.IntegerField(), help_text="How many refused rows each column has a problem in."
    )
    report_url = serializers.URLField(
        allow_null=True, help_text="Every refused row as CSV (line, field, message), with your API key."
    )


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
