"""Probes and metrics for operations: /healthz, /readyz (no auth, nothing revealed), /metrics (guarded)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub import collectors, health
from hub.errors import error_body
from hub.metrics import scrape_allowed


def _probe_body(status: str) -> dict[str, object]:
    return {"status": status, "build": settings.BATON_BUILD_ID or "unknown"}


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers; no dependency is consulted."""
    return JsonResponse(_probe_body("ok"))


@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: 200 when every dependency answers, else 503; each check with its latency."""
    results = health.readiness()
    ready = all(result.ok for result in results)
    body = _probe_body("ok" if ready else "unavailable")
    body["checks"] = {result.name: result.as_dict() for result in results}
    return JsonResponse(body, status=200 if ready else 503)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition for a bearer of METRICS_TOKEN or a scraper in METRICS_ALLOWED_NETWORKS."""
    verdict = scrape_allowed(
        authorization=request.headers.get("Authorization", ""),
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        token=settings.METRICS_TOKEN,
        networks=settings.METRICS_ALLOWED_NETWORKS,
    )
    if verdict != "allowed":
        response = JsonResponse(
            error_body(
                "not_authenticated" if verdict == "no_token" else "permission_denied",
                "Send Authorization: Bearer <METRICS_TOKEN>, or scrape from METRICS_ALLOWED_NETWORKS.",
            ),
            status=401 if verdict == "no_token" else 403,
        )
        if verdict == "no_token":
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(collectors.scrape_registry()), content_type=CONTENT_TYPE_LATEST)
