import django_filters

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
        return queryset.filter(flags__contains=[value]) if value else queryset
