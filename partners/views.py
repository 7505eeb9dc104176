from __future__ import annotations

import csv
import json
import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.errors import Conflict, PayloadTooLarge, Unprocessable
from hub.schema import errors
from partners import services
from partners.adapters import get_adapter
from partners.adapters.base import InboundRequest, PartnerError, VerificationError
from partners.adapters.native import CSV_COLUMNS, InvalidEvent, parse_events
from partners.authentication import IsPartner, PartnerKeyAuthentication, PartnerRateThrottle
from partners.models import InboundMessage, Partner
from partners.serializers import (
    AcceptedSerializer,
    AssignmentResultSerializer,
    AssignmentSerializer,
    HandOffConfirmSerializer,
    HandOffResultSerializer,
    HandOffSerializer,
    NativeBatchSerializer,
    NativeEventSerializer,
    UploadReportSerializer,
)
from tracking.views import get_shipment

log = logging.getLogger(__name__)
REJECTED = InboundMessage.State.REJECTED
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Same key and body: the first response again; same key, other body: 422.",
)


# Credentials and session state: never stored with a message (the admin shows stored headers).
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "api-key", "x-api-key", "x-auth-token"}
)


def without_secrets(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers worth keeping with the raw message (signatures, content type, request ids), no credentials."""
    return {name.lower(): value for name, value in headers.items() if name.lower() not in SECRET_HEADERS}


def kept_headers(request: Request) -> dict[str, str]:
    """The request's headers as stored with the raw message."""
    return without_secrets(request.headers)


def read_body(request: Request, partner: Partner, channel: str) -> bytes:
    """The raw body, refused with 413 past the limit (what was read is still kept, marked)."""
    limit = settings.BATON["MAX_BODY_BYTES"]
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > limit:
        prefix = request._request.read(limit)
        services.record_inbound(
            partner,
            channel=channel,
            body=prefix,
            headers=kept_headers(request),
            state=REJECTED,
            error=f"body of {length} bytes is over the {limit}-byte limit; first {len(prefix)} bytes kept",
        )
        raise PayloadTooLarge(f"The body is {length} bytes; the limit is {limit} bytes.")
    return request._request.body


class PartnerAPIView(APIView):
    authentication_classes = [PartnerKeyAuthentication]
    permission_classes = [IsPartner]
    throttle_classes = [PartnerRateThrottle]
    parser_classes: list[Any] = []  # bodies are read raw: they are stored exactly as received

    def reject(self, partner: Partner, channel: str, body: bytes, exc: Exception) -> None:
        services.record_inbound(
            partner,
            channel=channel,
            body=body,
            headers=kept_headers(self.request),
            state=REJECTED,
            error=str(exc),
        )

    def idempotent(self, partner: Partner, body: bytes, produce: Any) -> Response:
        key = self.request.headers.get("Idempotency-Key", "").strip()
        if not key:
            code, payload = produce()
            return Response(payload, status=code)
        if len(key) > 255:
            raise exceptions.ValidationError({"Idempotency-Key": ["At most 255 characters."]})
        try:
            code, payload = services.run_idempotent(partner, key, body, produce)
        except services.IdempotencyMismatch:
            raise Unprocessable("This Idempotency-Key was used with a different body.") from None
        except services.IdempotencyInProgress:
            raise Conflict() from None
        return Response(payload, status=code)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: also a number over 4,300 digits
        raise exceptions.ValidationError({"body": [f"Not valid JSON: {exc}"]}) from exc
    except RecursionError:
        raise exceptions.ValidationError({"body": ["Not valid JSON: nested too deeply."]}) from None


class PartnerEventsView(PartnerAPIView):
    @extend_schema(
        operation_id="partner_events_create",
        tags=["partner"],
        summary="Report one event, or a batch of up to 500",
        parameters=[IDEMPOTENCY_HEADER],
        # Bodies are read raw (no parser classes), so the media type is named here.
        request={
            "application/json": PolymorphicProxySerializer(
                component_name="PartnerEvents",
                serializers=[NativeEventSerializer, NativeBatchSerializer],
                resource_type_field_name=None,
            )
        },
        responses={202: AcceptedSerializer, **errors(400, 401, 404, 409, 413, 422, 429)},
    )
    def post(self, request: Request) -> Response:
        partner: Partner = request.auth  # type: ignore[assignment]
        body = read_body(request, partner, InboundMessage.Channel.API)
        return self.idempotent(partner, body, lambda: self.accept(partner, body))

    def accept(self, partner: Partner, body: bytes) -> tuple[int, dict[str, Any]]:
        channel = InboundMessage.Channel.API
        try:
            try:
                # The worker parses the stored body with the same function: what is accepted here
                # is recorded as it is, and what would not be is refused here, naming the field.
                events = parse_events(parse_json(body), max_events=settings.BATON["MAX_BATCH_EVENTS"])
            except InvalidEvent as exc:
                raise exceptions.ValidationError(exc.fields) from None
            services.check_custody(partner, [event.reference for event in events])
        except (exceptions.ValidationError, services.NotHeld, services.ShipmentFull) as exc:
            self.reject(partner, channel, body, exc)
            if isinstance(exc, services.NotHeld):
                raise NotHeldError(exc) from None
            if isinstance(exc, services.ShipmentFull):
                raise ShipmentFullError(exc) from None
            raise
        message = services.record_inbound(
            partner, channel=channel, body=body, headers=kept_headers(self.request)
        )
        return status.HTTP_202_ACCEPTED, {"accepted": len(events), "message_id": message.pk}


class NotHeldError(exceptions.NotFound):
    def __init__(self, exc: services.NotHeld) -> None:
        super().__init__(f"No shipment held by you under: {', '.join(exc.references)}.")
        self.references = exc.references


class ShipmentFullError(Conflict):
    default_code = "shipment_full"

    def __init__(self, exc: services.ShipmentFull) -> None:
        super().__init__(
            f"The shipment under {', '.join(exc.references)} holds {exc.ceiling} events, the most one "
            "shipment keeps; nothing more is recorded on it. Positions are kept one a minute per source, "
            "so sending them more often adds nothing; ask operations if a job really needs more."
        )
        self.references = exc.references


class HandOffView(PartnerAPIView):
    @extend_schema(
        operation_id="partner_handoffs_create",
        tags=["partner"],
        summary="Hand a shipment you hold on to another partner",
        request={"application/json": HandOffSerializer},
        responses={201: HandOffResultSerializer, **errors(400, 401, 404, 413, 429)},
    )
    def post(self, request: Request) -> Response:
        partner: Partner = request.auth  # type: ignore[assignment]
        channel = InboundMessage.Channel.HANDOFF
        body = read_body(request, partner, channel)
        serializer = HandOffSerializer(data=parse_json(body))
        if not serializer.is_valid():
            self.reject(partner, channel, body, exceptions.ValidationError(serializer.errors))
            raise exceptions.ValidationError(serializer.errors)
        data = serializer.validated_data
        message = services.record_inbound(
            partner, channel=channel, body=body, headers=kept_headers(request), enqueue=False
        )
        try:
            custody = services.hand_off(
                partner,
                reference=data["reference"],
                to_partner=data["to_partner"],
                to_reference=data["to_reference"],
                occurred_at=data.get("occurred_at"),
                note=data.get("note", ""),
                message=message,
            )
        except services.NotHeld as exc:
            services.finish_message(message, REJECTED, str(exc))
            raise NotHeldError(exc) from None
        except services.HandOffError as exc:
            services.finish_message(message, REJECTED, str(exc))
            raise exceptions.ValidationError({exc.field: [str(exc)]}) from None
        services.finish_message(message, InboundMessage.State.PROCESSED, "", recorded=1)
        return Response(HandOffResultSerializer(custody).data, status=status.HTTP_201_CREATED)


class ReferenceConflict(Conflict):
    default_code = "reference_in_use"

    def __init__(self, exc: services.ReferenceInUse, who: str) -> None:
        super().__init__(
            f"{who} already {'hold' if who == 'You' else 'holds'} another open job under "
            f"{exc.reference!r}; choose another reference."
        )


class HandOffConfirmView(PartnerAPIView):
    @extend_schema(
        operation_id="partner_handoffs_confirm",
        tags=["partner"],
        summary="Confirm your reference for a job handed to you",
        description="A hand-off's reference is the sender's proposal; reports under it are matched "
        "once you confirm it (or give your own).",
        request={"application/json": HandOffConfirmSerializer},
        responses={200: HandOffResultSerializer, **errors(400, 401, 404, 409, 413, 429)},
    )
    def post(self, request: Request) -> Response:
        partner: Partner = request.auth  # type: ignore[assignment]
        serializer = HandOffConfirmSerializer(data=parse_json(read_body(request, partner, "handoff")))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            custody = services.confirm_handoff(
                partner, reference=data["reference"], partner_reference=data.get("partner_reference", "")
            )
        except services.NoHandOffToConfirm:
            raise exceptions.NotFound(
                f"No job handed to you waits for confirmation as {data['reference']!r}."
            ) from None
        except services.ReferenceInUse as exc:
            raise ReferenceConflict(exc, "You") from None
        return Response(HandOffResultSerializer(custody).data)


def uploaded_csv(request: Request, body: bytes) -> bytes:
    """The file of a browser form's `file` field (small contractors use one), else the raw text/csv body."""
    if not request.content_type.startswith("multipart/form-data"):
        return body
    try:
        upload = request._request.FILES.get("file")  # parsed from the body already read and size-checked
    except MultiPartParserError as exc:
        raise exceptions.ValidationError({"file": [f"Not a valid form upload: {exc}"]}) from None
    if upload is None:
        raise exceptions.ValidationError({"file": ["Attach the CSV file as the form field `file`."]})
    return upload.read()


class UploadView(PartnerAPIView):
    @extend_schema(
        operation_id="partner_uploads_create",
        tags=["partner"],
        summary="Upload a CSV file of events (see the template)",
        request={
            "text/csv": OpenApiTypes.BINARY,
            "multipart/form-data": {"properties": {"file": {"type": "string", "format": "binary"}}},
        },
        responses={200: UploadReportSerializer, **errors(400, 401, 413, 429)},
    )
    def post(self, request: Request) -> Response:
        partner: Partner = request.auth  # type: ignore[assignment]
        channel = InboundMessage.Channel.UPLOAD
        body = uploaded_csv(request, read_body(request, partner, channel))
        try:
            result = services.accept_upload(partner, body=body, headers=kept_headers(request))
        except PartnerError as exc:
            self.reject(partner, channel, body, exc)
            raise exceptions.ValidationError({"file": [exc.message]}) from None
        message_id = result.message.pk
        report_url = reverse("partner-upload-report", args=[message_id]) if result.errors else None
        return Response(
            {
                "message_id": message_id,
                "rows": result.rows,
                "accepted": result.accepted,
                "refused": len(result.errors),
                # A file of thousands of bad rows gets a summary here and its full report by URL.
                "errors": result.errors[: settings.BATON["UPLOAD_ERRORS_SHOWN"]],
                "errors_by_field": result.errors_by_field(),
                "report_url": request.build_absolute_uri(report_url) if report_url else None,
            }
        )


class UploadReportView(PartnerAPIView):
    @extend_schema(
        operation_id="partner_uploads_report",
        tags=["partner"],
        summary="The full report of one of your uploads: every refused row, one problem a line",
        responses={(200, "text/csv"): OpenApiTypes.STR, **errors(401, 404, 429)},
    )
    def get(self, request: Request, message_id: int) -> HttpResponse:
        partner: Partner = request.auth  # type: ignore[assignment]
        report = services.upload_report(partner, message_id)
        if report is None:
            raise exceptions.NotFound("You made no upload with this id.")
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="baton-upload-{message_id}-report.csv"'
        writer = csv.writer(response)
        writer.writerow(["line", "field", "message"])
        writer.writerows(report)
        return response


class UploadTemplateView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        operation_id="partner_uploads_template",
        tags=["partner"],
        summary="The CSV template for uploads",
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request: Request) -> HttpResponse:
        example = "JOB-1042,delivered,2026-11-23T14:05:00+00:00,,,,51.5007,-0.1246,,Left with neighbour at 12"
        response = HttpResponse(",".join(CSV_COLUMNS) + "\n" + example + "\n", content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="baton-events-template.csv"'
        return response


class VendorWebhookView(APIView):
    """Verify with the vendor's own scheme, store the raw message, process it in a worker."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes: list[Any] = []

    def inbound(self, request: Request) -> InboundRequest:
        return InboundRequest(
            body=request._request.body if request.method == "POST" else b"",
            headers={k.lower(): v for k, v in request.headers.items()},
            query={k: str(v) for k, v in request.query_params.items()},
            method=request.method or "POST",
            path=request.path,
        )

    def get_authenticate_header(self, request: Request) -> str:
        # Without a scheme DRF turns a failed verification into 403; it is a 401 (the vendor's proof).
        return 'Signature realm="vendor-webhooks"'

    @extend_schema(
        operation_id="vendor_webhook_handshake",
        tags=["webhooks"],
        summary="URL ownership handshake (Onfleet's ?check=)",
        responses={(200, "text/plain"): OpenApiTypes.STR, **errors(404)},
    )
    def get(self, request: Request, adapter: str, slug: str) -> HttpResponse:
        # Answered from the adapter alone, the same for every slug: which partners exist is not told
        # (the handshake proves only that the URL answers, as it does for any slug).
        try:
            answer = get_adapter(adapter).challenge(self.inbound(request))
        except LookupError:
            answer = None
        if answer is None:
            raise exceptions.NotFound("No handshake at this URL.")
        return HttpResponse(answer, content_type="text/plain")

    @extend_schema(
        operation_id="vendor_webhook_receive",
        tags=["webhooks"],
        summary="Receive a vendor webhook",
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: AcceptedSerializer, **errors(401, 404, 413)},
    )
    def post(self, request: Request, adapter: str, slug: str) -> Response:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.BATON["MAX_BODY_BYTES"]:
            raise PayloadTooLarge(
                f"The body is {length} bytes; the limit is {settings.BATON['MAX_BODY_BYTES']}."
            )
        # An unknown slug gets the same answer as a bad signature: which partners exist is not told.
        partner = Partner.objects.filter(slug=slug, adapter=adapter, is_active=True).first()
        inbound = self.inbound(request)
        try:
            if partner is None:
                raise VerificationError("no active partner at this URL")
            get_adapter(partner.adapter).verify(inbound, partner.webhook_secrets)
        except VerificationError as exc:
            log.info("webhook %s/%s refused: %s", adapter, slug, exc)
            raise exceptions.AuthenticationFailed(
                "Webhook verification failed: the request is not signed for this URL."
            ) from None
        message = services.record_inbound(
            partner,
            channel=InboundMessage.Channel.WEBHOOK,
            body=inbound.body,
            headers=without_secrets(inbound.headers),
        )
        return Response({"accepted": 1, "message_id": message.pk})


class AssignmentView(APIView):
    @extend_schema(
        operation_id="shipments_assign",
        tags=["shipments"],
        summary="Give the shipment to a partner under the partner's reference",
        request=AssignmentSerializer,
        responses={201: AssignmentResultSerializer, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, reference: str) -> Response:
        shipment = get_shipment(reference)
        serializer = AssignmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            custody = services.assign_shipment(shipment, **serializer.validated_data)
        except services.ReferenceInUse as exc:
            raise ReferenceConflict(exc, serializer.validated_data["partner"].slug) from None
        return Response(AssignmentResultSerializer(custody).data, status=status.HTTP_201_CREATED)
