from django.contrib import admin

from contactcentre.models import Case, CaseEvent, CaseNote


class CaseNoteInline(admin.TabularInline):
    model = CaseNote
    extra = 0


class CaseEventInline(admin.TabularInline):
    model = CaseEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = ("at", "actor_label", "action", "details")

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ["id", "shipment", "reason", "channel", "status", "owner", "sla_due_at"]
    list_filter = ["status", "channel", "reason", "escalated"]
    raw_id_fields = ["shipment", "owner", "opened_by"]
    inlines = [CaseNoteInline, CaseEventInline]
