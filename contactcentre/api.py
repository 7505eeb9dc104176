"""The agent API: what the console does, for helpdesk sidebars and CTI screen-pops.

Input serializer -> one service call -> output serializer. Permissions are the console's.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contactcentre import queues, serializers, services
from contactcentre.models import Case
from hub.schema import errors
from tracking.models import Shipment


class CaseConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The case is not in a state that allows this."
    default_code = "conflict"


class ConsolePermission(BasePermission):
    """The view's `permissions[method]` (else `contactcentre.use_console`) for a logged-in user."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        needed = getattr(view, "permissions", {}).get(request.method, "contactcentre.use_console")
        return bool(user.has_perm(needed))


def _user(request: Request) -> User:
    assert isinstance(request.user, User)
    return request.user


def _case_queryset() -> QuerySet[Case]:
    return Case.objects.select_related("shipment", "owner", "opened_by")


@extend_schema_view(
    get=extend_schema(
        operation_id="cases_list",
        tags=["cases"],
        summary="Cases, soonest SLA first",
        parameters=[
            OpenApiParameter("status", str, enum=Case.Status.values),
            OpenApiParameter("owner", str, description="Owner's username; `me` for yourself."),
            OpenApiParameter("shipment", str, description="The shipment's reference."),
        ],
        responses={200: serializers.CaseSerializer(many=True), **errors(400, 401, 403)},
    ),
    post=extend_schema(
        operation_id="cases_create",
        tags=["cases"],
        summary="Open a case on a shipment from a contact",
        request=serializers.CaseCreateSerializer,
        responses={201: serializers.CaseDetailSerializer, **errors(400, 401, 403)},
    ),
)
class CaseListView(generics.ListCreateAPIView):
    permission_classes = [ConsolePermission]
    permissions = {"GET": "contactcentre.view_case", "POST": "contactcentre.add_case"}
    serializer_class = serializers.CaseSerializer
    filterset_class = None
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Case]:
        queryset = _case_queryset().order_by("sla_due_at", "id")
        params = self.request.query_params
        if params.get("status"):
            if params["status"] not in Case.Status.values:
                raise exceptions.ValidationError({"status": [f"One of {', '.join(Case.Status.values)}."]})
            queryset = queryset.filter(status=params["status"])
        if params.get("owner"):
            username = self.request.user.get_username() if params["owner"] == "me" else params["owner"]
            queryset = queryset.filter(owner__username=username)
        if params.get("shipment"):
            queryset = queryset.filter(shipment__reference=params["shipment"])
        return queryset

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = serializers.CaseCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        user = _user(request)
        case = services.open_case(
            values["shipment"],
            channel=values["channel"],
            reason=values["reason"],
            summary=values["summary"],
            contact_name=values["contact_name"],
            contact_detail=values["contact_detail"],
            opened_by=user,
            owner=user if values["take_ownership"] else None,
        )
        return Response(serializers.CaseDetailSerializer(case).data, status=status.HTTP_201_CREATED)


class CaseDetailView(APIView):
    permission_classes = [ConsolePermission]
    permissions = {"GET": "contactcentre.view_case", "PATCH": "contactcentre.change_case"}

    @extend_schema(
        operation_id="cases_retrieve",
        tags=["cases"],
        summary="A case with its notes and its audit history",
        responses={200: serializers.CaseDetailSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, case_id: int) -> Response:
        case = get_object_or_404(_case_queryset().prefetch_related("notes__author", "history"), pk=case_id)
        return Response(serializers.CaseDetailSerializer(case).data)

    @extend_schema(
        operation_id="cases_update",
        tags=["cases"],
        summary="Correct a case's reason, summary or contact (status changes go through actions)",
        request=serializers.CaseUpdateSerializer,
        responses={200: serializers.CaseDetailSerializer, **errors(400, 401, 403, 404, 409)},
    )
    def patch(self, request: Request, case_id: int) -> Response:
        case = get_object_or_404(Case, pk=case_id)
        data = serializers.CaseUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            case = services.update_case(case, by=_user(request), **data.validated_data)
        except services.CaseError as exc:
            raise CaseConflict(str(exc)) from exc
        case = _case_queryset().prefetch_related("notes__author", "history").get(pk=case.pk)
        return Response(serializers.CaseDetailSerializer(case).data)


class CaseNotesView(APIView):
    permission_classes = [ConsolePermission]
    permissions = {"GET": "contactcentre.view_case", "POST": "contactcentre.add_casenote"}

    @extend_schema(
        operation_id="cases_notes_list",
        tags=["cases"],
        summary="A case's notes, oldest first",
        responses={200: serializers.NoteSerializer(many=True), **errors(401, 403, 404)},
    )
    def get(self, request: Request, case_id: int) -> Response:
        case = get_object_or_404(Case, pk=case_id)
        return Response(serializers.NoteSerializer(case.notes.select_related("author"), many=True).data)

    @extend_schema(
        operation_id="cases_notes_create",
        tags=["cases"],
        summary="Add a note, internal or visible to the customer",
        request=serializers.NoteSerializer,
        responses={201: serializers.NoteSerializer, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, case_id: int) -> Response:
        case = get_object_or_404(Case, pk=case_id)
        data = serializers.NoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            note = services.add_note(
                case,
                body=data.validated_data["body"],
                by=_user(request),
                visible_to_customer=data.validated_data.get("visible_to_customer", False),
            )
        except services.CaseError as exc:
            raise CaseConflict(str(exc)) from exc
        return Response(serializers.NoteSerializer(note).data, status=status.HTTP_201_CREATED)


class CaseActionView(APIView):
    permission_classes = [ConsolePermission]
    permissions = {"POST": "contactcentre.change_case"}

    @extend_schema(
        operation_id="cases_actions",
        tags=["cases"],
        summary="Take ownership, hand over, escalate, set status, resolve or reopen",
        request=serializers.CaseActionSerializer,
        responses={200: serializers.CaseDetailSerializer, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, case_id: int) -> Response:
        case = get_object_or_404(Case, pk=case_id)
        data = serializers.CaseActionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values, user = data.validated_data, _user(request)
        action = values["action"]
        try:
            if action == "take_ownership":
                services.take_ownership(case, by=user)
            elif action == "hand_over":
                services.hand_over(case, to=values["to"], by=user, note=values["note"])
            elif action == "escalate":
                services.escalate_case(case, by=user, note=values["note"])
            elif action == "set_status":
                services.set_case_status(case, status=values["status"], by=user)
            elif action == "resolve":
                services.resolve_case(case, resolution=values["resolution"], by=user, note=values["note"])
            else:
                services.reopen_case(case, by=user, note=values["note"])
        except services.CaseError as exc:
            raise CaseConflict(str(exc)) from exc
        case = _case_queryset().prefetch_related("notes__author", "history").get(pk=case.pk)
        return Response(serializers.CaseDetailSerializer(case).data)


class ShipmentActionView(APIView):
    permission_classes = [ConsolePermission]
    permissions = {"POST": "contactcentre.use_console"}

    @extend_schema(
        operation_id="shipments_actions",
        tags=["cases"],
        summary="Chase the holder, route an instruction or reschedule, resend the link, message the "
        "customer, or (operations) reassign to another partner",
        request=serializers.ShipmentActionSerializer,
        responses={201: serializers.ActivitySerializer, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, reference: str) -> Response:
        shipment = get_object_or_404(Shipment, reference=reference)
        data = serializers.ShipmentActionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values, user = data.validated_data, _user(request)
        action = values["action"]
        needed = "contactcentre.operate" if action == "reassign" else "contactcentre.change_case"
        if not user.has_perm(needed):
            raise exceptions.PermissionDenied(f"You may not {action.replace('_', ' ')}.")
        case = None
        if values.get("case"):
            case = get_object_or_404(Case, pk=values["case"], shipment=shipment)
        try:
            if action == "chase":
                result = services.chase_holder(shipment, by_user=user, case=case, note=values["note"])
            elif action in ("instruction", "reschedule"):
                result = services.route_instruction(
                    shipment, by_user=user, text=values["text"], reschedule=action == "reschedule", case=case
                )
            elif action == "resend_link":
                result = services.resend_tracking_link(
                    shipment, by_user=user, channel=values["channel"], case=case
                )
            elif action == "message_customer":
                result = services.message_customer(
                    shipment, by_user=user, body=values["body"], channel=values["channel"], case=case
                )
            else:
                result = services.reassign_to_partner(
                    shipment,
                    by_user=user,
                    partner=values["partner"],
                    partner_reference=values["partner_reference"],
                    case=case,
                )
        except services.CaseError as exc:
            raise CaseConflict(str(exc)) from exc
        return Response(serializers.ActivitySerializer(result.activity).data, status=status.HTTP_201_CREATED)


class QueueListView(APIView):
    permission_classes = [ConsolePermission]

    @extend_schema(
        operation_id="queues_list",
        tags=["cases"],
        summary="The work queues you can see, with their counts",
        parameters=[
            OpenApiParameter("partner", str, description="Current holder's slug."),
            OpenApiParameter("area", str, description="Postcode district, e.g. SW1A."),
            OpenApiParameter("age", str, enum=list(queues.AGES), description="Older than."),
        ],
        responses={200: serializers.QueueSerializer(many=True), **errors(401, 403)},
    )
    def get(self, request: Request) -> Response:
        visible = queues.visible_queues(request.user)
        counts = queues.counts(visible, queues.Filters.from_query(request.query_params), request.user)
        data = [{**q.__dict__, "count": counts[q.slug]} for q in visible]
        return Response(serializers.QueueSerializer(data, many=True).data)


class QueueDetailView(APIView):
    permission_classes = [ConsolePermission]

    @extend_schema(
        operation_id="queues_retrieve",
        tags=["cases"],
        summary="One queue's items, most urgent first (up to 100 from `offset`)",
        parameters=[
            OpenApiParameter("partner", str),
            OpenApiParameter("area", str),
            OpenApiParameter("age", str, enum=list(queues.AGES)),
            OpenApiParameter("offset", int),
        ],
        responses={200: serializers.QueueRowsSerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, slug: str) -> Response:
        queue = queues.BY_SLUG.get(slug)
        if queue is None or queue not in queues.visible_queues(request.user):
            raise exceptions.NotFound("No such queue, or not one you can see.")
        offset = request.query_params.get("offset", "0")
        if not (offset.isascii() and offset.isdigit()):
            raise exceptions.ValidationError({"offset": ["A whole number, 0 or more."]})
        filters = queues.Filters.from_query(request.query_params)
        rows = queues.rows(queue, filters, request.user, limit=100, offset=int(offset))
        count = queues.counts([queue], filters, request.user)[slug]
        key = {"shipment": "shipments", "case": "cases", "message": "messages"}[queue.kind]
        data = {"queue": {**queue.__dict__, "count": count}, key: rows}
        return Response(serializers.QueueRowsSerializer(data).data)


class LookupView(APIView):
    permission_classes = [ConsolePermission]

    @extend_schema(
        operation_id="lookup_caller",
        tags=["cases"],
        summary="Screen-pop: a caller's open shipments and open cases by phone number",
        parameters=[OpenApiParameter("phone", str, required=True, description="Any format; 6+ digits.")],
        responses={200: serializers.LookupSerializer, **errors(400, 401, 403)},
    )
    def get(self, request: Request) -> Response:
        phone = request.query_params.get("phone", "")
        try:
            shipments, cases = services.lookup_caller(phone)
        except services.CaseError as exc:
            raise exceptions.ValidationError({"phone": [str(exc)]}) from exc
        return Response(
            serializers.LookupSerializer({"phone": phone, "shipments": shipments, "cases": cases}).data
        )


class ReplayView(APIView):
    permission_classes = [ConsolePermission]
    permissions = {"POST": "contactcentre.operate"}

    @extend_schema(
        operation_id="unmatched_replay",
        tags=["cases"],
        summary="Operations: put unmatched and unreadable inbound messages back through matching",
        request=serializers.ReplaySerializer,
        responses={200: serializers.ReplayedSerializer, **errors(400, 401, 403)},
    )
    def post(self, request: Request) -> Response:
        data = serializers.ReplaySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        count = services.replay_unmatched(by_user=_user(request), partner=data.validated_data.get("partner"))
        return Response({"replayed": count})
