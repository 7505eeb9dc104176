"""Request plumbing for operations: probe endpoints, request ids, per-route metrics and one log line."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from hub import views
from hub.errors import error_body
from hub.logs import REQUEST_ID_HEADER, bind_request_id, request_id_from
from hub.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger("baton.request")
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

OPERATIONS_ENDPOINTS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": views.healthz,
    "/readyz": views.readyz,
    "/metrics": views.metrics,
}


class OperationsEndpointsMiddleware:
    """Answer probes and scrapes before host validation, HTTPS redirects or sessions.

    A load balancer or Prometheus addresses a process by its IP, which ALLOWED_HOSTS rightly refuses
    for everything else; these endpoints build no URL from the Host header, so they can skip it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = OPERATIONS_ENDPOINTS.get(request.path_info)
        if view is not None and request.method in ("GET", "HEAD"):
            return view(request)
        return self.get_response(request)


def route_name(request: HttpRequest) -> str:
    """The URL pattern's name (never the raw path, which carries tokens and references)."""
    match = request.resolver_match
    if match is None:
        return "unmatched"
    return match.view_name or match.route or "unnamed"


class RequestObservabilityMiddleware:
    """Give each request an id (the caller's X-Request-ID if sane), count and time it per route, log it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        bind_request_id(request_id)
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        route = route_name(request)
        method = request.method if request.method in KNOWN_METHODS else "other"
        HTTP_REQUESTS.labels(route=route, method=method, status=str(response.status_code)).inc()
        HTTP_LATENCY.labels(route=route, method=method).observe(elapsed)
        response[REQUEST_ID_HEADER] = request_id
        log.info(
            "request finished",
            extra={
                "method": method,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 1),
            },
        )
        bind_request_id("")
        return response


class RefuseNulInQueryMiddleware:
    """A NUL character in a query string is refused with a 400 before any view runs.

    PostgreSQL cannot store or compare strings that contain NUL, so a filter value carrying one
    would otherwise end in a database error (a 500) on whichever list endpoint received it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if any("\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists()):
            body = error_body("invalid_query", "A query parameter contains a NUL character; remove it.")
            return JsonResponse(body, status=400)
        return self.get_response(request)
