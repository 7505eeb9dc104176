import django_filters
from rest_framework import exceptions
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

from tracking.models import Shipment, ShipmentQuerySet
from tracking.statuses import Status


class ShipmentFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(
        method="filter_search",
        label="Our reference, a partner's reference, customer e-mail, phone or postcode",
    )
    status = django_filters.MultipleChoiceFilter(choices=Status.choices)
    partner = django_filters.CharFilter(field_name="current_custody__partner__slug", label="Current holder")
    flag = django_filters.CharFilter(method="filter_flag", label="Shipments carrying this flag")

    class Meta:
        model = Shipment
        fields = ["search", "status", "partner", "flag"]

    def filter_search(self, queryset: ShipmentQuerySet, name: str, value: str) -> ShipmentQuerySet:
        return queryset.search(value)

    def filter_flag(self, queryset: ShipmentQuerySet, name: str, value: str) -> ShipmentQuerySet:
        # Reconciliation's flags and the sweep's alerts: the same truth the detail view shows.
        return queryset.carrying(value) if value else queryset


class StrictLimitOffsetPagination(LimitOffsetPagination):
    """Refuses a `limit` or `offset` that is not a whole number (400) instead of quietly paging from 0.

    A number past what the database can hold is refused too, rather than failing the query (500).
    """

    max_limit = 1000
    LARGEST = 10**12

    def get_limit(self, request: Request) -> int | None:
        self.require_whole_number(request, self.limit_query_param)
        return super().get_limit(request)

    def get_offset(self, request: Request) -> int:
        self.require_whole_number(request, self.offset_query_param)
        return super().get_offset(request)

    @classmethod
    def require_whole_number(cls, request: Request, name: str) -> None:
        for value in request.query_params.getlist(name):
            if not (value.isascii() and value.isdigit()) or int(value) > cls.LARGEST:
                raise exceptions.ValidationError({name: [f"A whole number from 0 to {cls.LARGEST}."]})
