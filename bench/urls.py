from django.urls import path

from bench.views import ControlReadView, ControlView
from hub.urls import urlpatterns as hub_urlpatterns

urlpatterns = [
    path("bench/control", ControlView.as_view(), name="bench-control"),
    path("bench/control-read/<str:reference>", ControlReadView.as_view(), name="bench-control-read"),
    *hub_urlpatterns,
]

handler404 = "hub.errors.page_not_found"
