from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.forms import Form
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.dateparse import parse_datetime
from django.utils.translation import get_language, gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.permissions import CanOperate
from hub.schema import errors
from tracking import exports, public, ratelimit, services, webhooks
from tracking.filters import ShipmentFilter
from tracking.forms import (
    CancelForm,
    InstructionsForm,
    ProblemForm,
    RescheduleForm,
    SecondFactorForm,
    SubscribeForm,
)
from tracking.models import Merchant, Shipment, TrackingEvent, WebhookEndpoint
from tracking.serializers import (
    PublicTrackingSerializer,
    RotateSecretSerializer,
    ShipmentCreatedSerializer,
    ShipmentCreateSerializer,
    ShipmentDetailSerializer,
    ShipmentSerializer,
    TimelineSerializer,
    WebhookEndpointCreateSerializer,
    WebhookEndpointSerializer,
    WebhookEndpointWithSecretSerializer,
    timeline_document,
)

EPCIS_CONTENT_TYPE = "application/ld+json"


def tracking_url(token: str) -> str:
    return public.tracking_url(token)


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
        return Response(ShipmentDetailSerializer(shipment).data)


class ShipmentTimelineView(APIView):
    @extend_schema(
        operation_id="shipments_timeline",
        tags=["shipments"],
        summary="The reconciled timeline: every entry with its source, custodian and flags",
        responses={200: TimelineSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, reference: str) -> Response:
        # Only what the document shows: the whole row with its holder and partner was ~1 ms of CPU.
        shipment = get_object_or_404(
            Shipment.objects.only("reference", "status", "reason", "flags", "alerts"), reference=reference
        )
        rows = list(TrackingEvent.objects.filter(shipment=shipment).timeline_rows())
        chain = services.custody_chain(shipment, last_heard=services.last_heard_by_partner(rows))
        return Response(timeline_document(shipment, flags=shipment.all_flags, chain=chain, rows=rows))


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
        # The serializer documents the shape; plain dicts keep the budget (DRF field copies cost ms).
        response = Response(public.as_json(services.public_tracking(shipment)))
        response["Cache-Control"] = "no-store"
        response["Referrer-Policy"] = "no-referrer"
        return response


BLANK_FORMS: dict[str, type[Form]] = {
    "instructions": InstructionsForm,
    "cancel": CancelForm,
    "subscribe": SubscribeForm,
    "problem": ProblemForm,
    "proof": SecondFactorForm,
}
_blank_forms: dict[tuple[str, str], str] = {}


def blank_form(name: str, form_class: type[Form]) -> str:
    """An empty form's HTML, rendered once per language: the page's budget has no room to redo it."""
    key = (name, get_language() or "")
    html = _blank_forms.get(key)
    if html is None:
        html = _blank_forms[key] = form_class().render()
    return html


def render_tracking_page(
    request: HttpRequest,
    shipment: Shipment,
    token: str,
    *,
    bound: Mapping[str, Form] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The customer's page; `bound` replaces a blank form with one the customer sent back with errors."""
    unlocked = public.proof_unlocked(shipment, request.COOKIES.get(public.PROOF_COOKIE))
    view = public.public_tracking(shipment, proof_unlocked=unlocked)
    forms: dict[str, Form | str] = {
        name: blank_form(name, form_class)
        for name, form_class in BLANK_FORMS.items()
        if name not in (bound or {})
    }
    forms["reschedule"] = RescheduleForm(shipment=shipment) if view["actions"]["reschedule"] else Form()
    forms.update(bound or {})
    context = {"view": view, "token": token, "forms": forms, "proof_unlocked": unlocked}
    response = render(request, "tracking/track.html", context, status=status)
    response["Referrer-Policy"] = "no-referrer"
    add_never_cache_headers(response)
    return response


def _refused(request: HttpRequest, message: str, *, status: int) -> HttpResponse:
    response = render(request, "tracking/refused.html", {"message": message}, status=status)
    add_never_cache_headers(response)
    return response


def customer_rate_ok(request: HttpRequest, token: str, scope: str) -> bool:
    """Per tracking link and per IP address: the customer's forms are not a free-for-all."""
    config = settings.BATON
    window = config["CUSTOMER_RATE_WINDOW_SECONDS"]
    return ratelimit.allow_all(
        (f"{scope}:token", token, config["CUSTOMER_RATE_LIMIT"], window),
        ("customer:ip", ratelimit.client_ip(request), config["CUSTOMER_RATE_LIMIT_IP"], window),
    )


def too_many(request: HttpRequest) -> HttpResponse:
    return _refused(
        request, gettext("Too many attempts. Please wait a few minutes and try again."), status=429
    )


@never_cache
def tracking_page(request: HttpRequest, token: str) -> HttpResponse:
    shipment = services.find_by_tracking_token(token)
    if shipment is None:
        return render(request, "tracking/not_found.html", status=404)
    return render_tracking_page(request, shipment, token)


@require_POST
def unlock_proof(request: HttpRequest, token: str) -> HttpResponse:
    """The second factor: order reference + postcode unlocks proof of delivery on this browser."""
    shipment = services.find_by_tracking_token(token)
    if shipment is None:
        return render(request, "tracking/not_found.html", status=404)
    if not customer_rate_ok(request, token, "proof"):
        return too_many(request)
    form = SecondFactorForm(request.POST)
    if form.is_valid() and public.matches_second_factor(
        shipment, reference=form.cleaned_data["reference"], postcode=form.cleaned_data["postcode"]
    ):
        response = redirect(f"/t/{token}#proof")
        set_proof_cookie(response, shipment, token)
        return response
    if form.is_valid():
        form.add_error(None, gettext("That order reference and postcode do not match this delivery."))
    return render_tracking_page(request, shipment, token, bound={"proof": form}, status=400)


def set_proof_cookie(response: HttpResponse, shipment: Shipment, token: str) -> None:
    response.set_cookie(
        public.PROOF_COOKIE,
        public.proof_unlock_value(shipment),
        max_age=settings.BATON["PROOF_UNLOCK_SECONDS"],
        path=f"/t/{token}",
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


@never_cache
def lookup_page(request: HttpRequest) -> HttpResponse:
    """Order reference + postcode -> the page; one answer for "no such order" and "wrong postcode"."""
    form = SecondFactorForm(request.POST or None)
    status = 200
    if request.method == "POST":
        config = settings.BATON
        window = config["CUSTOMER_RATE_WINDOW_SECONDS"]
        reference = (request.POST.get("reference") or "").strip().upper()[:64]
        if not ratelimit.allow_all(
            ("lookup:ip", ratelimit.client_ip(request), config["LOOKUP_RATE_LIMIT_IP"], window),
            ("lookup:reference", reference, config["LOOKUP_RATE_LIMIT_REFERENCE"], window),
        ):
            return too_many(request)
        if form.is_valid():
            shipment = public.lookup(form.cleaned_data["reference"], form.cleaned_data["postcode"])
            if shipment is not None:
                token = public.link_token(shipment)
                response = redirect(f"/t/{token}")
                set_proof_cookie(response, shipment, token)
                return response
            form.add_error(
                None,
                gettext(
                    "We could not find a delivery with that order reference and postcode. "
                    "Check both against your order confirmation."
                ),
            )
        status = 400
    return render(request, "tracking/lookup.html", {"form": form}, status=status)


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


class ShipmentEpcisView(APIView):
    permission_classes = [CanOperate]

    @extend_schema(
        operation_id="shipments_epcis",
        tags=["exports"],
        summary="The shipment's custody chain and status events as an EPCIS 2.0 JSON-LD document",
        responses={(200, "application/ld+json"): OpenApiTypes.OBJECT, **errors(401, 403, 404)},
    )
    def get(self, request: Request, reference: str) -> HttpResponse:
        document = exports.shipment_document(get_shipment(reference))
        return HttpResponse(json.dumps(document), content_type=EPCIS_CONTENT_TYPE)


def _moment(value: str | None) -> datetime | None:
    try:
        moment = parse_datetime(value) if value else None
    except ValueError:
        return None
    if moment is None or moment.tzinfo is None:
        return None
    offset = moment.utcoffset()
    # Real time zones stay within UTC-12 to UTC+14; PostgreSQL refuses offsets far outside them.
    if offset is None or abs(offset) > timedelta(hours=14):
        return None
    try:
        moment.astimezone(UTC)  # the database compares in UTC
    except OverflowError:  # 0001-01-01T00:00+00:01 is before the first instant UTC can hold
        return None
    return moment


class EpcisExportView(APIView):
    permission_classes = [CanOperate]

    @extend_schema(
        operation_id="epcis_export",
        tags=["exports"],
        summary="Every custody change and status event in a time range as one EPCIS 2.0 document, streamed",
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATETIME, required=True, description="Start (inclusive)."),
            OpenApiParameter("to", OpenApiTypes.DATETIME, required=True, description="End (exclusive)."),
        ],
        responses={(200, "application/ld+json"): OpenApiTypes.OBJECT, **errors(400, 401, 403)},
    )
    def get(self, request: Request) -> HttpResponseBase:
        raw_from, raw_to = request.query_params.get("from"), request.query_params.get("to")
        try:
            period = exports.check_range(_moment(raw_from), _moment(raw_to))
        except exports.InvalidRange as exc:
            for name, raw in (("from", raw_from), ("to", raw_to)):
                if raw and _moment(raw) is None:
                    exc.fields[name] = ["Not an ISO 8601 date-time with an offset, in years 1 to 9999 UTC."]
            raise ValidationError(exc.fields) from exc
        response = StreamingHttpResponse(exports.stream_range(period), content_type=EPCIS_CONTENT_TYPE)
        name = f"epcis-{period.start:%Y%m%dT%H%M}-{period.end:%Y%m%dT%H%M}.jsonld"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


@extend_schema_view(
    get=extend_schema(
        operation_id="merchant_webhooks_list",
        tags=["webhooks"],
        summary="A merchant's webhook endpoints",
        responses={200: WebhookEndpointSerializer(many=True), **errors(401, 403, 404)},
    ),
    post=extend_schema(
        operation_id="merchant_webhooks_create",
        tags=["webhooks"],
        summary="Register a webhook endpoint (returns its signing secret once)",
        request=WebhookEndpointCreateSerializer,
        responses={201: WebhookEndpointWithSecretSerializer, **errors(400, 401, 403, 404)},
    ),
)
class MerchantWebhookListView(generics.ListCreateAPIView):
    permission_classes = [CanOperate]
    serializer_class = WebhookEndpointSerializer
    filterset_class = None

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no merchant in the URL
            return WebhookEndpoint.objects.none()
        merchant = get_object_or_404(Merchant, slug=self.kwargs["slug"])
        return WebhookEndpoint.objects.filter(merchant=merchant).select_related("merchant").order_by("id")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        merchant = get_object_or_404(Merchant, slug=self.kwargs["slug"])
        serializer = WebhookEndpointCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            endpoint = webhooks.register_endpoint(merchant, **serializer.validated_data)
        except webhooks.InvalidEndpoint as exc:
            raise ValidationError(exc.fields) from exc
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookRotateSecretView(APIView):
    permission_classes = [CanOperate]

    @extend_schema(
        operation_id="merchant_webhooks_rotate_secret",
        tags=["webhooks"],
        summary="A new signing secret; the old one keeps signing beside it for the overlap",
        request=RotateSecretSerializer,
        responses={200: WebhookEndpointWithSecretSerializer, **errors(400, 401, 403, 404)},
    )
    def post(self, request: Request, pk: int) -> Response:
        endpoint = get_object_or_404(WebhookEndpoint.objects.select_related("merchant"), pk=pk)
        serializer = RotateSecretSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        webhooks.rotate_secret(endpoint, overlap=timedelta(hours=serializer.validated_data["overlap_hours"]))
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data)
