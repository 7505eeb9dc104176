"""Every flag Baton raises, in words for people: one label and one explanation each (no ORM here).

Reconciliation raises the first group on events and shipments (`Shipment.flags`); the sweep raises
the second group on open shipments (`Shipment.alerts`). Pages show `describe(code)`, never the code.
"""

from __future__ import annotations

from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

StrOrPromise = str | Promise


class Flag(models.TextChoices):
    CONFLICT = "conflict", _("Conflicting reports")
    FAR_FROM_DESTINATION = "far_from_destination", _("Delivered far from the address")
    CLOCK_SKEW = "clock_skew", _("Reported time in the future")
    FORMER_CUSTODIAN = "former_custodian", _("Report from a former holder")
    NOT_CUSTODIAN = "not_custodian", _("Report from a partner that never held it")
    REGRESSION = "regression", _("Report after the job was finished")
    STALE_CUSTODIAN = "stale_custodian", _("Holder silent")
    BEFORE_CUSTODY = "before_custody", _("Reported before the holder's custody began")
    ETA_PASSED = "eta_passed", _("ETA passed")
    LATE_RISK = "late_risk", _("At risk of being late")
    UNACKNOWLEDGED = "unacknowledged", _("Holder never acknowledged")


EXPLANATIONS: dict[str, StrOrPromise] = {
    Flag.CONFLICT: _("Two sources reported contradictory statuses close together; check with the holder."),
    Flag.FAR_FROM_DESTINATION: _("The delivery was reported far from the customer's address."),
    Flag.CLOCK_SKEW: _("A partner's clock put an update in the future; it is ordered by when we got it."),
    Flag.FORMER_CUSTODIAN: _(
        "A partner reported after it had handed the job on; the report is kept, not applied."
    ),
    Flag.NOT_CUSTODIAN: _(
        "A partner that did not hold the job at that time reported on it; kept, not applied."
    ),
    Flag.REGRESSION: _("A report tried to move a finished job back; it is kept and not applied."),
    Flag.STALE_CUSTODIAN: _("The partner holding the job has been silent longer than expected."),
    Flag.BEFORE_CUSTODY: _(
        "The first holder reported a time before its assignment was recorded; it is applied, check the clock."
    ),
    Flag.ETA_PASSED: _("The latest estimated time of arrival is in the past and the job is not finished."),
    Flag.LATE_RISK: _("Baton predicts the promised delivery window will likely be missed."),
    Flag.UNACKNOWLEDGED: _("The job was assigned or handed on and the new holder has not reported since."),
}

# Raised by the sweep on open shipments; true at rest, cleared when their cause clears.
SWEEP_FLAGS = frozenset({Flag.STALE_CUSTODIAN, Flag.ETA_PASSED, Flag.LATE_RISK, Flag.UNACKNOWLEDGED})


def describe(code: str) -> tuple[str, str]:
    """The label and explanation of a flag code; an unknown code is shown as itself."""
    try:
        flag = Flag(code)
    except ValueError:
        return code, ""
    return str(flag.label), str(EXPLANATIONS.get(flag, ""))
