"""The control endpoint: verify the partner's key exactly as ingest does, store the body, answer 202.

Ingest is compared with it in the same run, so the ratio says what Baton's own work costs on
whatever machine the bench runs on.
"""

from django.utils import timezone
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.models import ControlRow
from partners.authentication import IsPartner, PartnerKeyAuthentication
from tracking.models import Shipment


class ControlView(APIView):
    authentication_classes = [PartnerKeyAuthentication]  # the same SHA-256 lookup as ingest
    permission_classes = [IsPartner]
    parser_classes = []

    def post(self, request: Request) -> Response:
        row = ControlRow.objects.create(
            partner_id=request.auth.pk, body=request._request.body, received_at=timezone.now()
        )
        return Response({"accepted": 1, "message_id": row.pk}, status=status.HTTP_202_ACCEPTED)


class ControlReadView(APIView):
    """The read control: the agent API's authentication and permission, then one row by reference."""

    def get(self, request: Request, reference: str) -> Response:
        row = Shipment.objects.filter(reference=reference).values("reference", "status").first()
        return Response(row or {}, status=status.HTTP_200_OK if row else status.HTTP_404_NOT_FOUND)
