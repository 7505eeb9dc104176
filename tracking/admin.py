from django.contrib import admin

from tracking.models import Shipment, TrackingEvent


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
