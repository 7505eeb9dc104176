from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from tracking import webhooks
from tracking.models import (
    DeliveryAttempt,
    Merchant,
    OutboundMessage,
    Shipment,
    TrackingEvent,
    WebhookEndpoint,
)
from tracking.outbox import replay_message


class TrackingEventInline(admin.TabularInline):
    model = TrackingEvent
    extra = 0
    can_delete = False
    ordering = ["sequence"]
    fields = readonly_fields = (
        "sequence",
        "kind",
        "status",
        "reason",
        "raw_status",
        "occurred_at",
        "partner",
        "applied",
        "flags",
    )
    show_change_link = True

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Shipment)
class ShipmentAdmin(admin.ModelAdmin):
    list_display = [
        "reference",
        "customer_name",
        "postcode",
        "status",
        "current_custody",
        "eta",
        "last_event_at",
    ]
    list_filter = ["status", "current_custody__partner"]
    search_fields = ["reference", "customer_email", "postcode", "phone_digits", "custody__partner_reference"]
    readonly_fields = [
        *Shipment.RECONCILED_FIELDS,
        "tracking_token_expires_at",
        "created_at",
        "updated_at",
    ]
    list_select_related = ["current_custody__partner"]
    inlines = [TrackingEventInline]
    date_hierarchy = "created_at"


@admin.register(TrackingEvent)
class TrackingEventAdmin(admin.ModelAdmin):
    list_display = ["shipment", "kind", "status", "raw_status", "occurred_at", "partner", "applied"]
    list_filter = ["kind", "status", "applied", "partner"]
    search_fields = ["shipment__reference", "event_id"]
    raw_id_fields = ["shipment", "custody", "message"]
    list_select_related = ["shipment", "partner"]


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]


class WebhookEndpointForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=WebhookEndpoint.EVENT_TYPES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None ticked: every event type.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["merchant", "url", "event_types", "description", "is_active"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            webhooks.check_endpoint(data.get("url", ""), data.get("event_types", []))
        except webhooks.InvalidEndpoint as exc:
            for field, messages in exc.fields.items():
                self.add_error(field, messages)
        return data


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["merchant", "url", "is_active", "disabled_at", "disabled_reason"]
    list_filter = ["is_active", "merchant"]
    readonly_fields = ["secret", "previous_secret_expires_at", "disabled_at", "disabled_reason", "created_at"]
    actions = ["rotate_secrets", "enable"]

    @admin.action(description="Rotate the secret (the old one keeps signing for 24 hours)")
    def rotate_secrets(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            webhooks.rotate_secret(endpoint)
        self.message_user(request, f"Rotated {queryset.count()} secret(s); give the merchant the new one.")

    @admin.action(description="Enable again (then replay what failed)")
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            webhooks.enable_endpoint(endpoint)
        self.message_user(request, f"Enabled {queryset.count()} endpoint(s).")


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "attempted_at",
        "succeeded",
        "status_code",
        "latency_ms",
        "response_excerpt",
        "error",
    )

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(OutboundMessage)
class OutboundMessageAdmin(admin.ModelAdmin):
    list_display = ["created_at", "transport", "purpose", "recipient", "state", "attempts", "next_attempt_at"]
    list_filter = ["transport", "state", "purpose"]
    search_fields = ["recipient", "shipment__reference", "dedupe_key"]
    date_hierarchy = "created_at"
    raw_id_fields = ["shipment"]
    readonly_fields = [f.name for f in OutboundMessage._meta.fields]
    inlines = [DeliveryAttemptInline]
    actions = ["replay"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Send again (same message, same webhook-id)")
    def replay(self, request: HttpRequest, queryset: QuerySet[OutboundMessage]) -> None:
        for message in queryset.order_by("created_at", "id"):
            replay_message(message)
        self.message_user(request, f"Queued {queryset.count()} message(s) to send again.")
