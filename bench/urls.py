from django.urls import path

from bench.views import ControlView
from hub.urls import urlpatterns as hub_urlpatterns

urlpatterns = [path("bench/control", ControlView.as_view(), name="bench-control"), *hub_urlpatterns]

handler404 = "hub.errors.page_not_found"
