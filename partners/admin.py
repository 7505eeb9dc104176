from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from partners import services
from partners.models import Custody, DriverLink, InboundMessage, Partner, SilenceThreshold, StageDuration
from partners.services import driver_links


class SilenceThresholdForm(forms.ModelForm):
    status = forms.ChoiceField(choices=SilenceThreshold.status_choices, required=False)

    class Meta:
        model = SilenceThreshold
        fields = ["partner", "partner_kind", "status", "minutes"]


class PartnerSilenceThresholdInline(admin.TabularInline):
    """This partner's own thresholds, which override its kind's (docs/flags.md)."""

    model = SilenceThreshold
    form = SilenceThresholdForm
    fields = ["status", "minutes"]
    extra = 0
    verbose_name = "silence threshold for this partner"


@admin.register(SilenceThreshold)
class SilenceThresholdAdmin(admin.ModelAdmin):
    form = SilenceThresholdForm
    list_display = ["__str__", "partner", "partner_kind", "status", "minutes"]
    list_filter = ["partner_kind", "status"]
    list_editable = ["minutes"]
    list_display_links = ["__str__"]


@admin.register(StageDuration)
class StageDurationAdmin(admin.ModelAdmin):
    """Learned by the ETA model's beat job: read-only, shown so operations can see what it believes."""

    list_display = ["__str__", "partner", "partner_kind", "status", "samples", "p50_seconds", "p90_seconds"]
    list_filter = ["partner_kind", "status"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    inlines = [PartnerSilenceThresholdInline]
    list_display = ["slug", "name", "kind", "adapter", "api_key_prefix", "is_active"]
    list_filter = ["kind", "adapter", "is_active"]
    search_fields = ["slug", "name"]
    readonly_fields = ["api_key_prefix", "created_at"]
    filter_horizontal = ["driver_handoff_partners"]
    fieldsets = [
        (None, {"fields": ["slug", "name", "kind", "adapter", "is_active", "timezone"]}),
        (
            "Credentials",
            {"fields": ["api_key_prefix", "webhook_secret", "previous_webhook_secret", "config"]},
        ),
        ("Reaching the partner", {"fields": ["callback_url", "callback_secret", "ops_email"]}),
        (
            "Driver links",
            {"fields": ["sends_driver_links", "driver_contact", "driver_handoff_partners"]},
        ),
        ("Limits", {"fields": ["rate_limit_per_minute", "created_at"]}),
    ]
    actions = ["rotate_api_key"]

    @admin.action(description="Issue a new API key (shown once)")
    def rotate_api_key(self, request: HttpRequest, queryset: QuerySet[Partner]) -> None:
        for partner in queryset:
            key = partner.rotate_api_key()
            partner.save(update_fields=["api_key_hash", "api_key_prefix"])
            self.message_user(request, f"{partner.slug}: new API key {key}", messages.WARNING)


@admin.register(Custody)
class CustodyAdmin(admin.ModelAdmin):
    list_display = ["shipment", "partner", "partner_reference", "started_at", "ended_at", "handed_off_by"]
    list_filter = ["partner"]
    search_fields = ["partner_reference", "shipment__reference"]
    raw_id_fields = ["shipment", "handed_off_by"]
    list_select_related = ["shipment", "partner"]
    actions = ["send_driver_link", "send_route_link"]

    @admin.action(description="Send a driver link for each selected job (to the partner's driver contact)")
    def send_driver_link(self, request: HttpRequest, queryset: QuerySet[Custody]) -> None:
        sent = [
            c
            for c in queryset.filter(ended_at__isnull=True).select_related("partner")
            if driver_links.send_driver_link(c, reason="sent by operations")
        ]
        missing = queryset.count() - len(sent)
        self.message_user(request, f"Sent {len(sent)} driver link(s).")
        if missing:
            self.message_user(
                request,
                f"{missing} job(s) skipped: closed, or the partner has no driver contact.",
                messages.WARNING,
            )

    @admin.action(description="Send one driver link for the route of the selected jobs")
    def send_route_link(self, request: HttpRequest, queryset: QuerySet[Custody]) -> None:
        routes = {
            (c.partner, c.group_reference)
            for c in queryset.filter(ended_at__isnull=True).select_related("partner")
            if c.group_reference
        }
        for partner, route in routes:
            if partner.driver_contact:
                driver_links.issue_driver_link(
                    partner,
                    group_reference=route,
                    contact=partner.driver_contact,
                    reason="sent by operations",
                )
        self.message_user(request, f"Sent {len(routes)} route link(s); jobs with no route were skipped.")


@admin.register(DriverLink)
class DriverLinkAdmin(admin.ModelAdmin):
    list_display = [
        "partner",
        "custody",
        "group_reference",
        "sent_to",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["partner", "revoked_at"]
    search_fields = [
        "partner__slug",
        "custody__partner_reference",
        "custody__shipment__reference",
        "group_reference",
    ]
    readonly_fields = [
        "partner",
        "custody",
        "group_reference",
        "sent_to",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return (
            False  # links are made by assignment, hand-off or the Custody actions (the token is shown once)
        )

    @admin.action(description="Revoke the selected driver links now")
    def revoke(self, request: HttpRequest, queryset: QuerySet[DriverLink]) -> None:
        count = driver_links.revoke_driver_links(queryset)
        self.message_user(request, f"Revoked {count} driver link(s).")


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "partner",
        "channel",
        "received_at",
        "state",
        "attempts",
        "events_recorded",
        "error",
    ]
    list_filter = ["state", "channel", "partner"]
    # An upload's report can run to megabytes: its refused lines are in the error and the headers.
    readonly_fields = [f.name for f in InboundMessage._meta.fields if f.name not in ("body", "report")] + [
        "body_text"
    ]
    exclude = ["body", "report"]
    actions = ["replay"]
    date_hierarchy = "received_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[InboundMessage]:
        return super().get_queryset(request).defer("report")

    @admin.display(description="Body as received")
    def body_text(self, obj: InboundMessage) -> str:
        return bytes(obj.body).decode("utf-8", errors="replace")

    @admin.action(description="Replay the selected messages")
    def replay(self, request: HttpRequest, queryset: QuerySet[InboundMessage]) -> None:
        ids = list(queryset.exclude(state=InboundMessage.State.REJECTED).values_list("pk", flat=True))
        queryset.filter(pk__in=ids).update(state=InboundMessage.State.RECEIVED, error="")
        services.enqueue_processing(ids)
        self.message_user(request, f"{len(ids)} message(s) queued again.")
