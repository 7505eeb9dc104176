"""The native API's `Idempotency-Key`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction

from partners.models import IdempotencyKey, Partner


def run_idempotent(
    partner: Partner, key: str, body: bytes, produce: Callable[[], tuple[int, dict[str, Any]]]
) -> tuple[int, dict[str, Any]]:
    """Stripe-style `Idempotency-Key`: the same key and body replay the first response.

    Raises IdempotencyMismatch (same key, other body) or IdempotencyInProgress (still running).
    A request that fails before it produced a response frees its key, so the partner can retry.
    """
    request_hash = hashlib.sha256(body).hexdigest()
    try:
        with transaction.atomic():
            record = IdempotencyKey.objects.create(partner=partner, key=key, request_hash=request_hash)
    except IntegrityError:
        existing = IdempotencyKey.objects.get(partner=partner, key=key)
        if existing.request_hash != request_hash:
            raise IdempotencyMismatch(key) from None
        if existing.status_code is None:
            raise IdempotencyInProgress(key) from None
        return existing.status_code, existing.response_body or {}
    try:
        status_code, payload = produce()
    except BaseException:
        record.delete()
        raise
    IdempotencyKey.objects.filter(pk=record.pk).update(status_code=status_code, response_body=payload)
    return status_code, payload


class IdempotencyMismatch(Exception):
    pass


class IdempotencyInProgress(Exception):
    pass
