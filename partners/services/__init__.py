"""Partner services, one module per concern; the public names are re-exported here.

- `inbound`: store what a partner sent, process it in the worker, replay and sweep.
- `matching`: match events to shipments through custody and record them.
- `custody`: assign a shipment, hand it on.
- `polling`: pull partners.
- `idempotency`: the native API's `Idempotency-Key`.
- `uploads`: CSV uploads checked row by row, refused rows reported.
- `backlog`: how far behind ingest is (waiting messages, lag, what needs a replay); used as a module.
- `holder`: send a customer's request to whoever holds the job, on its channel.
- `scorecards`: partner figures materialised per day by set-based SQL, and read back for pages.
"""

from partners.services import backlog
from partners.services.custody import (
    HandOffError,
    NoHandOffToConfirm,
    ReferenceInUse,
    assign_shipment,
    confirm_handoff,
    hand_off,
)
from partners.services.holder import Routed, send_to_holder
from partners.services.idempotency import IdempotencyInProgress, IdempotencyMismatch, run_idempotent
from partners.services.inbound import (
    Relay,
    adapter_for,
    enqueue_processing,
    finish_message,
    process_inbound,
    process_inbound_batch,
    record_inbound,
    replay_messages,
    replay_unmatched_mentioning,
    sweep_unprocessed,
)
from partners.services.matching import (
    Matched,
    NotHeld,
    Recorded,
    ShipmentFull,
    check_custody,
    dedupe_key,
    event_counts,
    event_row,
    find_custodies,
    match_events,
    record_events,
    record_message_events,
)
from partners.services.polling import poll_custody, poll_pull_partners
from partners.services.scorecards import materialise_day, materialise_recent
from partners.services.uploads import UploadResult, accept_upload, check_upload_rows, upload_report

__all__ = [
    "HandOffError",
    "IdempotencyInProgress",
    "IdempotencyMismatch",
    "Matched",
    "NoHandOffToConfirm",
    "NotHeld",
    "Recorded",
    "ReferenceInUse",
    "Relay",
    "Routed",
    "ShipmentFull",
    "UploadResult",
    "accept_upload",
    "adapter_for",
    "assign_shipment",
    "backlog",
    "check_custody",
    "check_upload_rows",
    "confirm_handoff",
    "dedupe_key",
    "enqueue_processing",
    "event_counts",
    "event_row",
    "find_custodies",
    "finish_message",
    "hand_off",
    "match_events",
    "materialise_day",
    "materialise_recent",
    "poll_custody",
    "poll_pull_partners",
    "process_inbound",
    "process_inbound_batch",
    "record_events",
    "record_inbound",
    "record_message_events",
    "replay_messages",
    "replay_unmatched_mentioning",
    "run_idempotent",
    "send_to_holder",
    "sweep_unprocessed",
    "upload_report",
]
