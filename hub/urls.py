from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from contactcentre import api as console_api
from contactcentre import customer_views
from hub import views as hub_views
from partners import driver_views
from partners import views as partner_views
from tracking import views as tracking_views

api_v1 = [
    path("shipments", tracking_views.ShipmentListView.as_view(), name="shipments"),
    path("shipments/<str:reference>", tracking_views.ShipmentDetailView.as_view(), name="shipment"),
    path(
        "shipments/<str:reference>/timeline",
        tracking_views.ShipmentTimelineView.as_view(),
        name="shipment-timeline",
    ),
    path(
        "shipments/<str:reference>/epcis",
        tracking_views.ShipmentEpcisView.as_view(),
        name="shipment-epcis",
    ),
    path(
        "merchants/<slug:slug>/webhooks",
        tracking_views.MerchantWebhookListView.as_view(),
        name="merchant-webhooks",
    ),
    path(
        "webhooks/<int:pk>/rotate-secret",
        tracking_views.WebhookRotateSecretView.as_view(),
        name="webhook-rotate-secret",
    ),
    path("epcis/events", tracking_views.EpcisExportView.as_view(), name="epcis-export"),
    path(
        "shipments/<str:reference>/assignments",
        partner_views.AssignmentView.as_view(),
        name="shipment-assignments",
    ),
    path(
        "shipments/<str:reference>/actions", console_api.ShipmentActionView.as_view(), name="shipment-actions"
    ),
    path("cases", console_api.CaseListView.as_view(), name="cases"),
    path("cases/<int:case_id>", console_api.CaseDetailView.as_view(), name="case"),
    path("cases/<int:case_id>/notes", console_api.CaseNotesView.as_view(), name="case-notes"),
    path("cases/<int:case_id>/actions", console_api.CaseActionView.as_view(), name="case-actions"),
    path("queues", console_api.QueueListView.as_view(), name="queues"),
    path("queues/<slug:slug>", console_api.QueueDetailView.as_view(), name="queue"),
    path("lookup", console_api.LookupView.as_view(), name="lookup"),
    path("unmatched/replay", console_api.ReplayView.as_view(), name="unmatched-replay"),
]
partner_v1 = [
    path("events", partner_views.PartnerEventsView.as_view(), name="partner-events"),
    path("handoffs", partner_views.HandOffView.as_view(), name="partner-handoffs"),
    path("handoffs/confirm", partner_views.HandOffConfirmView.as_view(), name="partner-handoffs-confirm"),
    path("uploads", partner_views.UploadView.as_view(), name="partner-uploads"),
    path("uploads/template.csv", partner_views.UploadTemplateView.as_view(), name="partner-upload-template"),
    path(
        "uploads/<int:message_id>/report.csv",
        partner_views.UploadReportView.as_view(),
        name="partner-upload-report",
    ),
]

handler404 = "hub.errors.page_not_found"
handler500 = "hub.errors.server_error"
admin.site.site_header = admin.site.site_title = "Baton administration"
admin.site.index_title = "Baton"

urlpatterns = [
    path("", RedirectView.as_view(url="/console/", permanent=False)),
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(
            template_name="contactcentre/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("console/", include("contactcentre.urls")),
    path("api/v1/", include(api_v1)),
    path("api/partner/v1/", include(partner_v1)),
    path("api/public/v1/track/<str:token>", tracking_views.PublicTrackingView.as_view(), name="public-track"),
    path("t/<str:token>", tracking_views.tracking_page, name="tracking-page"),
    path("proof/<str:signed>", tracking_views.proof_file, name="proof-file"),
    path("d/<str:token>", driver_views.driver_page, name="driver-page"),
    path("d/<str:token>/jobs/<int:custody_id>/report", driver_views.driver_report, name="driver-report"),
    path("d/<str:token>/jobs/<int:custody_id>/hand-on", driver_views.driver_hand_on, name="driver-hand-on"),
    path("t/<str:token>/proof", tracking_views.unlock_proof, name="tracking-proof"),
    path("t/<str:token>/instructions", customer_views.instructions, name="customer-instructions"),
    path("t/<str:token>/reschedule", customer_views.reschedule, name="customer-reschedule"),
    path("t/<str:token>/cancel", customer_views.cancel, name="customer-cancel"),
    path("t/<str:token>/subscribe", customer_views.subscribe, name="customer-subscribe"),
    path("t/<str:token>/problem", customer_views.problem, name="customer-problem"),
    path("track/", tracking_views.lookup_page, name="tracking-lookup"),
    path("u/<str:signed>", customer_views.unsubscribe, name="customer-unsubscribe"),
    path("i18n/", include("django.conf.urls.i18n")),
    path(
        "webhooks/<slug:adapter>/<slug:slug>/",
        partner_views.VendorWebhookView.as_view(),
        name="vendor-webhook",
    ),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: the CSP allows no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    # Also answered by hub.middleware.OperationsEndpointsMiddleware before host validation.
    path("healthz", hub_views.healthz, name="healthz"),
    path("readyz", hub_views.readyz, name="readyz"),
    path("metrics", hub_views.metrics, name="metrics"),
]
