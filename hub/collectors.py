"""Scrape-time gauges read from the database: backlog, unresolved messages, flags, the outbox.

They run only in the web process that answers /metrics (workers export their counters alone), each
with a cheap query: the backlog reads the (state, received_at) index; flags read open shipments only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from django.apps import apps
from django.db.models import Count
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hub.metrics import process_registry
from partners.services import backlog
from tracking.models import Shipment


class InboundBacklogCollector(Collector):
    """Messages waiting for the worker, the age of the oldest, and messages unmatched or failed."""

    def collect(self) -> Iterator[Metric]:
        waiting = backlog.inbound_backlog()
        yield GaugeMetricFamily(
            "baton_inbound_backlog_messages",
            "Partner messages stored and waiting for the worker.",
            waiting.waiting,
        )
        yield GaugeMetricFamily(
            "baton_inbound_oldest_waiting_age_seconds",
            "Age of the oldest partner message still waiting for the worker (0 when none waits).",
            waiting.oldest_age_seconds(),
        )
        unresolved = GaugeMetricFamily(
            "baton_inbound_unresolved_messages",
            "Partner messages that reached no timeline, by state (unmatched, failed); replay them.",
            labels=["state"],
        )
        for state, count in backlog.unresolved_counts().items():
            unresolved.add_metric([state], count)
        yield unresolved


class ShipmentFlagsCollector(Collector):
    """Open shipments carrying each stored flag (conflict, far_from_destination, stale_custodian...)."""

    def collect(self) -> Iterator[Metric]:
        counts: Counter[str] = Counter()
        for flags in Shipment.objects.open().exclude(flags=[]).values_list("flags", flat=True).iterator():
            counts.update(set(flags or ()))
        family = GaugeMetricFamily(
            "baton_shipment_flags", "Open shipments carrying a stored flag, by flag.", labels=["flag"]
        )
        for flag, count in sorted(counts.items()):
            family.add_metric([flag], count)
        yield family


class OutboundDeliveriesCollector(Collector):
    """Outbox rows (notifications, partner instructions, merchant webhooks) by transport and state.

    Reads `tracking.OutboundMessage` when that model exists; until then it reports nothing. Extend
    the labels here when the outbox grows fields worth splitting by.
    """

    model_label = ("tracking", "OutboundMessage")

    def collect(self) -> Iterator[Metric]:
        try:
            model = apps.get_model(*self.model_label)
        except LookupError:
            return
        field_names = {field.name for field in model._meta.get_fields()}
        labels = [name for name in ("transport", "channel", "state") if name in field_names]
        if "state" not in labels:
            return
        family = GaugeMetricFamily(
            "baton_outbound_messages",
            "Outbox messages (notifications, partner and merchant deliveries) by transport and state.",
            labels=labels,
        )
        for row in model._default_manager.values(*labels).annotate(n=Count("pk")).order_by(*labels):
            family.add_metric([str(row[name]) for name in labels], row["n"])
        yield family


DATABASE_COLLECTORS: tuple[type[Collector], ...] = (
    InboundBacklogCollector,
    ShipmentFlagsCollector,
    OutboundDeliveriesCollector,
)


def scrape_registry() -> CollectorRegistry:
    """What /metrics serves: every web process's counters plus the database gauges, read now."""
    registry = process_registry()
    for collector in DATABASE_COLLECTORS:
        registry.register(collector())
    return registry
