"""What changed on a shipment, told to the apps built on the core (notifications, merchant webhooks).

The core cannot import the apps above it, so they subscribe here (in their `AppConfig.ready`).
`publish` runs inside the transaction that made the change: a listener that wants to send something
queues an `OutboundMessage` (tracking.outbox), so the message commits or rolls back with the change.
Listeners decide and queue; they never send or call out over the network themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracking.models import Shipment


@dataclass(frozen=True)
class Snapshot:
    """The parts of a shipment that people and other systems are told about."""

    status: str
    reason: str
    eta: datetime | None
    custody_id: int | None
    flags: frozenset[str]

    @classmethod
    def of(cls, shipment: Shipment) -> Snapshot:
        return cls(
            status=shipment.status,
            reason=shipment.reason,
            eta=shipment.eta,
            custody_id=shipment.current_custody_id,
            flags=frozenset(shipment.all_flags),
        )


@dataclass(frozen=True)
class ShipmentChange:
    before: Snapshot
    after: Snapshot

    @property
    def status_changed(self) -> bool:
        return (self.before.status, self.before.reason) != (self.after.status, self.after.reason)

    @property
    def eta_changed(self) -> bool:
        return self.before.eta != self.after.eta

    @property
    def custody_changed(self) -> bool:
        return self.before.custody_id != self.after.custody_id

    @property
    def flags_raised(self) -> frozenset[str]:
        return self.after.flags - self.before.flags

    @property
    def flags_cleared(self) -> frozenset[str]:
        return self.before.flags - self.after.flags

    @property
    def anything(self) -> bool:
        return self.before != self.after


Listener = Callable[["Shipment", ShipmentChange], None]
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> None:
    """Call `listener(shipment, change)` after every change to a shipment's reconciled or swept state."""
    if listener not in _listeners:
        _listeners.append(listener)


def unsubscribe(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def publish(shipment: Shipment, before: Snapshot) -> None:
    """Tell every listener what changed since `before`; nothing is told when nothing changed."""
    change = ShipmentChange(before=before, after=Snapshot.of(shipment))
    if not change.anything:
        return
    for listener in list(_listeners):
        listener(shipment, change)
