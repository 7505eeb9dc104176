from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template import TemplateSyntaxError
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from contactcentre import notifications
from contactcentre.models import (
    ActionRule,
    Case,
    CaseEvent,
    CaseNote,
    MessageTemplate,
    ProactiveAction,
    Subscription,
)
from tracking import public
from tracking.models import Shipment


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


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = [
        "shipment",
        "channel",
        "address",
        "source",
        "created_at",
        "last_notified_at",
        "unsubscribed_at",
    ]
    list_filter = ["channel", "source"]
    search_fields = ["shipment__reference", "address"]
    raw_id_fields = ["shipment"]
    readonly_fields = ["created_at", "last_notified_at"]


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    """Operations edit the words of each customer message and preview them with a sample shipment."""

    list_display = ["purpose", "subject", "is_active", "updated_at", "preview_link"]
    readonly_fields = ["preview_link", "variables"]
    fields = ["purpose", "is_active", "subject", "email_body", "sms_body", "variables", "preview_link"]

    def get_urls(self) -> list[URLPattern]:
        preview = path(
            "<int:pk>/preview/",
            self.admin_site.admin_view(self.preview_view),
            name="contactcentre_messagetemplate_preview",
        )
        return [preview, *super().get_urls()]

    @admin.display(description="Preview")
    def preview_link(self, obj: MessageTemplate) -> str:
        if obj.pk is None:
            return "Save to preview."
        url = reverse("admin:contactcentre_messagetemplate_preview", args=[obj.pk])
        return format_html('<a href="{}">Preview with a sample shipment</a>', url)

    @admin.display(description="Variables you can use")
    def variables(self, obj: MessageTemplate) -> str:
        names = ", ".join(f"{{{{ {name} }}}}" for name in sorted(notifications.sample_context()))
        return f"{names}. Only what the customer's tracking page shows is available."

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        template = get_object_or_404(MessageTemplate, pk=pk)
        if not self.has_view_permission(request, template):
            raise PermissionDenied
        reference = request.GET.get("shipment", "").strip()
        shipment = Shipment.objects.filter(reference=reference).first() if reference else None
        if shipment is not None:
            context = notifications.message_context(
                public.public_tracking(shipment), link=f"{settings.SITE_URL}/t/s.preview-link"
            )
        else:
            context = notifications.sample_context()
        error = ""
        try:
            subject, email_body, sms_body = notifications.render_message(template, context)
        except TemplateSyntaxError as exc:
            subject = email_body = sms_body = ""
            error = str(exc)
        return TemplateResponse(
            request,
            "admin/contactcentre/messagetemplate/preview.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "original": template,
                "title": f"Preview: {template}",
                "subject": subject,
                "email_body": email_body,
                "sms_body": sms_body,
                "error": error,
                "shipment": shipment,
                "reference": reference,
            },
        )


@admin.register(ActionRule)
class ActionRuleAdmin(admin.ModelAdmin):
    """Operations turn the sweep's flags into actions (docs/flags.md); validated by `ActionRule.clean`."""

    list_display = ["name", "flag", "action", "partner_kind_label", "enabled", "updated_at"]
    list_filter = ["flag", "action", "partner_kind", "enabled"]
    list_editable = ["enabled"]
    search_fields = ["name"]
    fields = ["name", "flag", "action", "partner_kind", "enabled"]

    @admin.display(description="Holders")
    def partner_kind_label(self, obj: ActionRule) -> str:
        return obj.get_partner_kind_display() or "Every holder"


@admin.register(ProactiveAction)
class ProactiveActionAdmin(admin.ModelAdmin):
    """What the rules did, once per episode: read-only (the shipment's timeline has the details)."""

    list_display = ["created_at", "rule", "shipment", "flag", "episode", "outcome", "message_state"]
    list_filter = ["rule", "flag"]
    search_fields = ["shipment__reference", "episode"]
    list_select_related = ["rule", "shipment", "activity__outbound"]

    @admin.display(description="Message now")
    def message_state(self, obj: ProactiveAction) -> str:
        outbound = obj.activity.outbound if obj.activity is not None else None
        return outbound.get_state_display() if outbound is not None else "—"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
