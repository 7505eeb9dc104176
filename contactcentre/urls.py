from django.urls import path

from contactcentre import views

app_name = "contactcentre"
urlpatterns = [
    path("", views.console, name="console"),
    path("operations/", views.operations, name="operations"),
    path("operations/replay", views.replay, name="replay"),
    path("shipments/<str:reference>/", views.shipment_page, name="shipment"),
]
