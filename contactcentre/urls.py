from django.urls import path

from contactcentre import dashboard, views

app_name = "contactcentre"
urlpatterns = [
    path("", views.queue_page, name="console"),
    path("find/", views.find, name="find"),
    path("operations/", views.operations, name="operations"),
    path("operations/replay", views.replay, name="replay"),
    path("shipments/<str:reference>/", views.shipment_page, name="shipment"),
    path("shipments/<str:reference>/cases/", views.open_case, name="open-case"),
    path("shipments/<str:reference>/actions/<slug:action>/", views.shipment_action, name="shipment-action"),
    path("cases/<int:case_id>/", views.case_page, name="case"),
    path("cases/<int:case_id>/<slug:action>/", views.case_action, name="case-action"),
    path("unmatched/replay/", views.replay_unmatched, name="replay-unmatched"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("dashboard/scorecards.csv", dashboard.scorecards_csv, name="scorecards-csv"),
    path("dashboard/contact-centre.csv", dashboard.contact_centre_csv, name="contact-centre-csv"),
]
