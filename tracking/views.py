from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.schema import errors
from tracking import services
from tracking.filters import ShipmentFilter
from tracking.models import Shipment, TrackingEvent
from tracking.serializers import (
    PublicTrackingSerializer,
    ShipmentCreatedSerializer,
    ShipmentCreateSerializer,
    ShipmentDetailSerializer,
    ShipmentSerializer,
    TimelineSerializer,
    timeline_document,
)


def tracking_url(token: str) -> str:
    return f"{settings.SITE_URL}/t/{token}"


@extend_schema_view(
    get=extend_schema(
        operation_id="shipments_list",
        tags=["shipments"],
        summary="Find shipments by anything a caller knows",
        responses={200: ShipmentSerializer(many=True), **errors(400, 401, 403)},
    ),
    post=extend_schema(
        operation_id="shipments_create",
        tags=["shipments"],
        summary="Create a shipment (returns the customer tracking link once)",
        request=ShipmentCreateSerializer,
        responses={201: ShipmentCreatedSerializer, **errors(400, 401, 403)},
    ),
)
class ShipmentListView(generics.ListCreateAPIView):
    filterset_class = ShipmentFilter
    serializer_class = ShipmentSerializer

    def get_queryset(self) -> QuerySet[Shipment]:
        return Shipment.objects.select_related("current_custody__partner").order_by("-created_at", "-id")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ShipmentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        shipment, token = services.create_shipment(**serializer.validated_data)
        shipment.tracking_url = tracking_url(token)  # type: ignore[attr-defined]
        return Response(ShipmentCreatedSerializer(shipment).data, status=status.HTTP_201_CREATED)


def get_shipment(reference: str) -> Shipment:
    return get_object_or_404(Shipment.objects.select_related("current_custody__partner"), reference=reference)


class ShipmentDetailView(APIView):
    @extend_schema(
        operation_id="shipments_retrieve",
        tags=["shipments"],
        summary="A shipment with its custody chain",
        responses={200: ShipmentDetailSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, reference: str) -> Response:
        shipment = get_shipment(reference)
        chain = services.custody_chain(shipment)
        shipment.custody_chain = chain  # type: ignore[attr-defined]
        shipment.flags = services.flags_at(shipment, chain)
        return Response(ShipmentDetailSerializer(shipment).data)


class ShipmentTimelineView(APIView):
    @extend_schema(
        operation_id="shipments_timeline",
        tags=["shipments"],
        summary="The reconciled timeline: every entry with its source, custodian and flags",
        responses={200: TimelineSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, reference: str) -> Response:
        shipment = get_shipment(reference)
        rows = list(TrackingEvent.objects.filter(shipment=shipment).timeline_rows())
        chain = services.custody_chain(shipment, last_heard=services.last_heard_by_partner(rows))
        flags = services.flags_at(shipment, chain)
        return Response(timeline_document(shipment, flags=flags, chain=chain, rows=rows))


class PublicTrackingView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="public_track",
        tags=["public"],
        summary="The customer's view of one shipment",
        responses={200: PublicTrackingSerializer, **errors(404)},
    )
    def get(self, request: Request, token: str) -> Response:
        shipment = services.find_by_tracking_token(token)
        if shipment is None:
            raise Http404("No delivery matches this link, or the link has expired.")
        response = Response(PublicTrackingSerializer(services.public_tracking(shipment)).data)
        response["Cache-Control"] = "no-store"
        response["Referrer-Policy"] = "no-referrer"
        return response


@never_cache
def tracking_page(request: HttpRequest, token: str) -> HttpResponse:
    shipment = services.find_by_tracking_token(token)
    if shipment is None:
        return render(request, "tracking/not_found.html", status=404)
    response = render(request, "tracking/track.html", {"view": services.public_tracking(shipment)})
    response["Referrer-Policy"] = "no-referrer"
    return response


@never_cache
def proof_file(request: HttpRequest, signed: str) -> FileResponse:
    """A proof-of-delivery photo or signature, for whoever holds a signed, time-limited link to it."""
    path = services.proof_file_path(signed)
    if path is None or not default_storage.exists(path):
        raise Http404("no such proof file, or the link has expired")
    response = FileResponse(default_storage.open(path, "rb"), content_type="image/jpeg")
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
