from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from partners import services
from partners.models import Custody, InboundMessage, Partner


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "kind", "adapter", "api_key_prefix", "is_active"]
    list_filter = ["kind", "adapter", "is_active"]
    search_fields = ["slug", "name"]
    readonly_fields = ["api_key_prefix", "created_at"]
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
    readonly_fields = [f.name for f in InboundMessage._meta.fields if f.name != "body"] + ["body_text"]
    exclude = ["body"]
    actions = ["replay"]
    date_hierarchy = "received_at"

    @admin.display(description="Body as received")
    def body_text(self, obj: InboundMessage) -> str:
        return bytes(obj.body).decode("utf-8", errors="replace")

    @admin.action(description="Replay the selected messages")
    def replay(self, request: HttpRequest, queryset: QuerySet[InboundMessage]) -> None:
        ids = list(queryset.exclude(state=InboundMessage.State.REJECTED).values_list("pk", flat=True))
        queryset.filter(pk__in=ids).update(state=InboundMessage.State.RECEIVED, error="")
        services.enqueue_processing(ids)
        self.message_user(request, f"{len(ids)} message(s) queued again.")
