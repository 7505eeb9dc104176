"""Agent API shapes for cases, notes, actions, queues and the caller lookup (no logic here)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from rest_framework import serializers

from contactcentre.models import Case, CaseEvent, CaseNote
from contactcentre.presenters import describe_case_event
from partners.models import Partner
from tracking.flags import describe
from tracking.models import Activity, Shipment

CUSTOMER_CHANNELS = [("email", "E-mail"), ("sms", "SMS")]
OPEN_STATUS_CHOICES = [c for c in Case.Status.choices if c[0] != Case.Status.RESOLVED]


class FlagSerializer(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    explanation = serializers.CharField()


class FlagsField(serializers.ListField):
    """Flag codes with their label and explanation, never a bare code."""

    child = FlagSerializer()  # type: ignore[assignment]

    def to_representation(self, data: Any) -> list[dict[str, str]]:
        return [{"code": code, "label": describe(code)[0], "explanation": describe(code)[1]} for code in data]


class CaseShipmentSerializer(serializers.ModelSerializer):
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    current_partner = serializers.CharField(
        source="current_custody.partner.slug", default=None, read_only=True, allow_null=True
    )
    flags = FlagsField(source="all_flags", read_only=True)

    class Meta:
        model = Shipment
        fields = [
            "reference",
            "customer_name",
            "status",
            "status_label",
            "postcode",
            "promised_from",
            "promised_until",
            "eta",
            "eta_earliest",
            "eta_latest",
            "late_risk",
            "current_partner",
            "last_event_at",
            "flags",
        ]


class CaseSerializer(serializers.ModelSerializer):
    shipment = serializers.CharField(
        source="shipment.reference", default=None, read_only=True, allow_null=True
    )
    owner = serializers.CharField(source="owner.username", default=None, read_only=True, allow_null=True)
    opened_by = serializers.CharField(
        source="opened_by.username", default=None, read_only=True, allow_null=True
    )
    past_sla = serializers.SerializerMethodField()

    class Meta:
        model = Case
        fields = [
            "id",
            "shipment",
            "channel",
            "reason",
            "status",
            "summary",
            "owner",
            "escalated",
            "opened_by",
            "opened_by_rule",
            "contact_name",
            "contact_detail",
            "sla_due_at",
            "past_sla",
            "resolution",
            "resolved_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_past_sla(self, case: Case) -> bool:
        return case.is_past_sla()


class CaseCreateSerializer(serializers.Serializer):
    shipment = serializers.SlugRelatedField(
        slug_field="reference", queryset=Shipment.objects.all(), help_text="The shipment's reference."
    )
    channel = serializers.ChoiceField(choices=Case.Channel.choices)
    reason = serializers.ChoiceField(choices=Case.Reason.choices)
    summary = serializers.CharField(max_length=300, required=False, default="", allow_blank=True)
    contact_name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    contact_detail = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    take_ownership = serializers.BooleanField(required=False, default=True)


class CaseUpdateSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=Case.Reason.choices, required=False)
    summary = serializers.CharField(max_length=300, required=False, allow_blank=True)
    contact_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    contact_detail = serializers.CharField(max_length=200, required=False, allow_blank=True)


class NoteSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None, read_only=True, allow_null=True)

    class Meta:
        model = CaseNote
        fields = ["id", "author", "body", "visible_to_customer", "created_at"]
        read_only_fields = ["id", "author", "created_at"]
        extra_kwargs = {"body": {"max_length": 5000}}


class CaseEventSerializer(serializers.ModelSerializer):
    description = serializers.SerializerMethodField()

    class Meta:
        model = CaseEvent
        fields = ["at", "actor_label", "action", "description", "details"]
        read_only_fields = fields

    def get_description(self, event: CaseEvent) -> str:
        return describe_case_event(event)


class CaseDetailSerializer(CaseSerializer):
    notes = NoteSerializer(many=True, read_only=True)
    history = CaseEventSerializer(many=True, read_only=True)

    class Meta(CaseSerializer.Meta):
        fields = [*CaseSerializer.Meta.fields, "notes", "history"]
        read_only_fields = fields


class CaseActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=["take_ownership", "hand_over", "escalate", "set_status", "resolve", "reopen"]
    )
    to = serializers.SlugRelatedField(
        slug_field="username",
        queryset=User.objects.filter(is_active=True),
        required=False,
        help_text="hand_over: the agent's username.",
    )
    status = serializers.ChoiceField(
        choices=OPEN_STATUS_CHOICES,
        required=False,
        help_text="set_status: the new status.",
    )
    resolution = serializers.ChoiceField(
        choices=Case.Resolution.choices, required=False, help_text="resolve: the resolution code."
    )
    note = serializers.CharField(max_length=1000, required=False, default="", allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        needs = {"hand_over": "to", "set_status": "status", "resolve": "resolution"}.get(attrs["action"])
        if needs and needs not in attrs:
            raise serializers.ValidationError({needs: [f"Required for {attrs['action']}."]})
        return attrs


class ShipmentActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=["chase", "instruction", "reschedule", "resend_link", "message_customer", "reassign"]
    )
    case = serializers.IntegerField(required=False, min_value=1, help_text="Record the action on this case.")
    note = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)
    text = serializers.CharField(
        max_length=2000, required=False, help_text="instruction/reschedule: what the customer asks."
    )
    body = serializers.CharField(max_length=2000, required=False, help_text="message_customer: the message.")
    channel = serializers.ChoiceField(choices=CUSTOMER_CHANNELS, required=False, default="email")
    partner = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Partner.objects.all(),
        required=False,
        help_text="reassign: the new partner.",
    )
    partner_reference = serializers.CharField(
        max_length=128, required=False, help_text="reassign: the new partner's reference for the job."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        needs = {
            "instruction": ["text"],
            "reschedule": ["text"],
            "message_customer": ["body"],
            "reassign": ["partner", "partner_reference"],
        }.get(attrs["action"], [])
        missing = {name: [f"Required for {attrs['action']}."] for name in needs if not attrs.get(name)}
        if missing:
            raise serializers.ValidationError(missing)
        return attrs


class ActivitySerializer(serializers.ModelSerializer):
    outcome = serializers.CharField(read_only=True)
    case = serializers.IntegerField(source="case_id", read_only=True, allow_null=True)
    outbound = serializers.IntegerField(source="outbound_id", read_only=True, allow_null=True)

    class Meta:
        model = Activity
        fields = [
            "id",
            "kind",
            "occurred_at",
            "actor",
            "actor_label",
            "channel",
            "summary",
            "outcome",
            "case",
            "outbound",
        ]
        read_only_fields = fields


class QueueSerializer(serializers.Serializer):
    slug = serializers.CharField()
    title = serializers.CharField()
    explanation = serializers.CharField()
    kind = serializers.ChoiceField(choices=["shipment", "case", "message"])
    count = serializers.IntegerField(help_text="Up to 1001; more than 1000 means 1000+.")


class QueueMessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    partner = serializers.CharField(source="partner.slug")
    channel = serializers.CharField()
    state = serializers.CharField()
    error = serializers.CharField()
    received_at = serializers.DateTimeField()


class QueueRowsSerializer(serializers.Serializer):
    queue = QueueSerializer()
    shipments = CaseShipmentSerializer(many=True, required=False)
    cases = CaseSerializer(many=True, required=False)
    messages = QueueMessageSerializer(many=True, required=False)


class LookupSerializer(serializers.Serializer):
    phone = serializers.CharField()
    shipments = CaseShipmentSerializer(many=True)
    cases = CaseSerializer(many=True)


class ReplaySerializer(serializers.Serializer):
    partner = serializers.SlugRelatedField(slug_field="slug", queryset=Partner.objects.all(), required=False)


class ReplayedSerializer(serializers.Serializer):
    replayed = serializers.IntegerField()
