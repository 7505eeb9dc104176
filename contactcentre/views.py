"""The agent console: queues, the shipment page, cases and the actions that reach people.

Views are thin: a form checks the input, one service does the work, the page shows the result.
Every page needs login and a console permission; see `console_required`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django import forms as django_forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from contactcentre import forms, queues, services
from contactcentre.models import Case, CaseEvent
from contactcentre.presenters import describe_case_event, shipment_timeline
from partners.models import InboundMessage, Partner
from partners.services import backlog, replay_messages
from tracking.filters import ShipmentFilter
from tracking.models import Shipment

View = Callable[..., HttpResponse]


def console_required(permission: str = "contactcentre.use_console") -> Callable[[View], View]:
    """Anonymous users go to the login page; users without the permission get 403."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not request.user.has_perm(permission):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def _user(request: HttpRequest) -> User:
    """The logged-in user (every view is behind `console_required`)."""
    assert isinstance(request.user, User)
    return request.user


def _shipment(reference: str) -> Shipment:
    return get_object_or_404(Shipment.objects.select_related("current_custody__partner"), reference=reference)


def _case(case_id: int) -> Case:
    return get_object_or_404(Case.objects.select_related("shipment", "owner", "opened_by"), pk=case_id)


@console_required()
def queue_page(request: HttpRequest) -> HttpResponse:
    visible = queues.visible_queues(request.user)
    filters = queues.Filters.from_query(request.GET)
    counts = queues.counts(visible, filters, request.user)
    chosen = queues.BY_SLUG.get(request.GET.get("queue", ""))
    if chosen is None or chosen not in visible:
        chosen = next((q for q in visible if counts[q.slug]), visible[0])
    context = {
        "queues": [(q, counts[q.slug]) for q in visible],
        "queue": chosen,
        "rows": queues.rows(chosen, filters, request.user),
        "filters": filters,
        "partners": Partner.objects.filter(is_active=True).only("slug", "name"),
        "ages": queues.AGE_LABELS.items(),
        "cap": queues.COUNT_CAP,
    }
    template = "contactcentre/_queue.html" if request.headers.get("HX-Target") == "queue" else None
    return render(request, template or "contactcentre/queues.html", context)


@console_required()
def find(request: HttpRequest) -> HttpResponse:
    term = request.GET.get("search", "").strip()
    shipments: list[Shipment] = []
    found_cases: list[Case] = []
    if term:
        queryset = Shipment.objects.select_related("current_custody__partner").order_by("-updated_at", "-id")
        shipments = list(ShipmentFilter({"search": term}, queryset=queryset).qs[:50])
        found_cases = list(
            Case.objects.filter(shipment__in=[s.pk for s in shipments])
            .exclude(status=Case.Status.RESOLVED)
            .select_related("shipment", "owner")
        )
    return render(
        request, "contactcentre/find.html", {"search": term, "shipments": shipments, "cases": found_cases}
    )


@console_required()
def shipment_page(request: HttpRequest, reference: str) -> HttpResponse:
    shipment = _shipment(reference)
    timeline = shipment_timeline(shipment, raw_messages=request.user.has_perm("contactcentre.operate"))
    cases = list(shipment.cases.select_related("owner").order_by("-created_at"))
    return render(
        request,
        "contactcentre/shipment.html",
        {
            **timeline,
            "shipment": shipment,
            "cases": cases,
            "open_form": forms.OpenCaseForm(),
            **_action_forms(request),
        },
    )


def _action_forms(request: HttpRequest) -> dict[str, Any]:
    context: dict[str, Any] = {
        "chase_form": forms.ChaseForm(),
        "instruction_form": forms.InstructionForm(),
        "link_form": forms.LinkForm(),
        "message_form": forms.MessageForm(),
    }
    if request.user.has_perm("contactcentre.operate"):
        context["reassign_form"] = forms.ReassignForm()
    return context


@require_POST
@console_required("contactcentre.add_case")
def open_case(request: HttpRequest, reference: str) -> HttpResponse:
    shipment = _shipment(reference)
    form = forms.OpenCaseForm(request.POST)
    if not form.is_valid():
        messages.error(request, _errors(form))
        return redirect("contactcentre:shipment", reference)
    data = form.cleaned_data
    case = services.open_case(
        shipment,
        channel=data["channel"],
        reason=data["reason"],
        summary=data["summary"],
        contact_name=data["contact_name"],
        contact_detail=data["contact_detail"],
        opened_by=_user(request),
        owner=_user(request) if data["take_ownership"] else None,
    )
    messages.success(request, f"Case {case.pk} opened.")
    return redirect("contactcentre:case", case.pk)


@console_required("contactcentre.view_case")
def case_page(request: HttpRequest, case_id: int) -> HttpResponse:
    case = _case(case_id)
    notes = list(case.notes.select_related("author"))
    history = list(CaseEvent.objects.filter(case=case))
    for event in history:
        event.description = describe_case_event(event)  # type: ignore[attr-defined]
    context: dict[str, Any] = {
        "case": case,
        "past_sla": case.is_past_sla(),
        "notes": notes,
        "history": history,
        "note_form": forms.NoteForm(),
        "status_form": forms.StatusForm(initial={"status": case.status}),
        "resolve_form": forms.ResolveForm(),
        "reason_form": forms.ReasonNoteForm(),
        "hand_over_form": forms.HandOverForm(),
        **_action_forms(request),
    }
    if case.shipment is not None:
        shipment = Shipment.objects.select_related("current_custody__partner").get(pk=case.shipment.pk)
        context["shipment"] = shipment
        timeline = shipment_timeline(shipment, raw_messages=request.user.has_perm("contactcentre.operate"))
        context["shipment_flags"] = timeline["flags"]
        context["entries"] = timeline["entries"]
    return render(request, "contactcentre/case.html", context)


CASE_ACTIONS: dict[str, tuple[str, type[Any] | None]] = {
    "take": ("contactcentre.change_case", None),
    "hand-over": ("contactcentre.change_case", forms.HandOverForm),
    "escalate": ("contactcentre.change_case", forms.ReasonNoteForm),
    "status": ("contactcentre.change_case", forms.StatusForm),
    "resolve": ("contactcentre.change_case", forms.ResolveForm),
    "reopen": ("contactcentre.change_case", forms.ReasonNoteForm),
    "note": ("contactcentre.add_casenote", forms.NoteForm),
}


@require_POST
@console_required()
def case_action(request: HttpRequest, case_id: int, action: str) -> HttpResponse:
    if action not in CASE_ACTIONS:
        raise Http404("No such action.")
    permission, form_class = CASE_ACTIONS[action]
    if not request.user.has_perm(permission):
        raise PermissionDenied
    case = _case(case_id)
    form = form_class(request.POST) if form_class else None
    if form is not None and not form.is_valid():
        messages.error(request, _errors(form))
        return redirect("contactcentre:case", case.pk)
    data = form.cleaned_data if form is not None else {}
    user = _user(request)
    try:
        done = _run_case_action(action, case, data, user)
    except services.CaseError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return redirect("contactcentre:case", case.pk)


def _run_case_action(action: str, case: Case, data: dict[str, Any], user: Any) -> str:
    if action == "take":
        services.take_ownership(case, by=user)
        return "You own this case now."
    if action == "hand-over":
        services.hand_over(case, to=data["to"], by=user, note=data["note"])
        return f"Case handed to {data['to'].get_username()}."
    if action == "escalate":
        services.escalate_case(case, by=user, note=data["note"])
        return "Case escalated to a supervisor."
    if action == "status":
        case = services.set_case_status(case, status=data["status"], by=user)
        return f"Status is now {case.get_status_display().lower()}."
    if action == "resolve":
        case = services.resolve_case(case, resolution=data["resolution"], by=user, note=data["note"])
        return f"Case resolved: {case.get_resolution_display().lower()}."
    if action == "reopen":
        services.reopen_case(case, by=user, note=data["note"])
        return "Case reopened; you own it."
    services.add_note(case, body=data["body"], by=user, visible_to_customer=data["visible_to_customer"])
    return "Note added."


SHIPMENT_ACTIONS: dict[str, tuple[str, type[Any]]] = {
    "chase": ("contactcentre.change_case", forms.ChaseForm),
    "instruction": ("contactcentre.change_case", forms.InstructionForm),
    "link": ("contactcentre.change_case", forms.LinkForm),
    "message": ("contactcentre.change_case", forms.MessageForm),
    "reassign": ("contactcentre.operate", forms.ReassignForm),
}


@require_POST
@console_required()
def shipment_action(request: HttpRequest, reference: str, action: str) -> HttpResponse:
    if action not in SHIPMENT_ACTIONS:
        raise Http404("No such action.")
    permission, form_class = SHIPMENT_ACTIONS[action]
    if not request.user.has_perm(permission):
        raise PermissionDenied
    shipment = _shipment(reference)
    case = None
    if request.POST.get("case"):
        case = get_object_or_404(Case, pk=request.POST["case"], shipment=shipment)
    back = (
        reverse("contactcentre:case", args=[case.pk])
        if case
        else reverse("contactcentre:shipment", args=[reference])
    )
    form = form_class(request.POST)
    if not form.is_valid():
        messages.error(request, _errors(form))
        return redirect(back)
    data, user = form.cleaned_data, _user(request)
    try:
        if action == "chase":
            result = services.chase_holder(shipment, by_user=user, case=case, note=data["note"])
        elif action == "instruction":
            result = services.route_instruction(
                shipment,
                by_user=user,
                text=data["text"],
                reschedule=data["reschedule"],
                case=case,
            )
        elif action == "link":
            result = services.resend_tracking_link(shipment, by_user=user, channel=data["channel"], case=case)
        elif action == "message":
            result = services.message_customer(
                shipment,
                by_user=user,
                body=data["body"],
                channel=data["channel"],
                case=case,
            )
        else:
            result = services.reassign_to_partner(
                shipment,
                by_user=user,
                partner=data["partner"],
                partner_reference=data["partner_reference"],
                case=case,
            )
    except services.CaseError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{result.activity.summary}.")
    return redirect(back)


@require_POST
@console_required("contactcentre.operate")
def replay_unmatched(request: HttpRequest) -> HttpResponse:
    partner = None
    if request.POST.get("partner"):
        partner = get_object_or_404(Partner, slug=request.POST["partner"])
    count = services.replay_unmatched(by_user=_user(request), partner=partner)
    messages.success(request, f"{count} message{'s' if count != 1 else ''} put back through matching.")
    return redirect(f"{reverse('contactcentre:console')}?queue=unmatched")


def _errors(form: Any) -> str:
    return " ".join(
        f"{form.fields[name].label if name in form.fields else ''}: {' '.join(errs)}".lstrip(": ")
        for name, errs in form.errors.items()
    )


# --- The operations page (backlog, lag, failed and unmatched per partner) -------------------------

# The operations page reads lag over this window (the "last hour").
LAG_WINDOW = timedelta(hours=1)
OPERATE = "contactcentre.operate"


@dataclass(frozen=True)
class ProblemRow:
    partner: Partner
    failed: int
    unmatched: int
    failed_url: str
    unmatched_url: str


def duration_text(seconds: float | None) -> str:
    """A lag or an age as a person reads it at a glance: 1 h 5 min, 3 min 20 s, 0.4 s."""
    if seconds is None:
        return "no data"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def messages_url(state: str, partner: Partner | None = None) -> str:
    """The admin's list of stored partner messages in this state (and from this partner)."""
    query: dict[str, object] = {"state__exact": state}
    if partner is not None:
        query["partner__id__exact"] = partner.pk
    return f"{reverse('admin:partners_inboundmessage_changelist')}?{urlencode(query)}"


class ReplayForm(django_forms.Form):
    partner = django_forms.ModelChoiceField(queryset=Partner.objects.all(), to_field_name="slug")
    state = django_forms.ChoiceField(
        choices=[(s.value, s.label) for s in (InboundMessage.State.FAILED, InboundMessage.State.UNMATCHED)]
    )


@staff_member_required
@permission_required(OPERATE, raise_exception=True)
def operations(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    since = now - LAG_WINDOW
    waiting = backlog.inbound_backlog()
    lag = backlog.lag_percentiles(since=since)
    problems = [
        ProblemRow(
            row.partner,
            row.failed,
            row.unmatched,
            messages_url(InboundMessage.State.FAILED, row.partner),
            messages_url(InboundMessage.State.UNMATCHED, row.partner),
        )
        for row in backlog.unresolved_by_partner()
    ]
    return render(
        request,
        "contactcentre/operations.html",
        {
            "waiting": waiting.waiting,
            "oldest_at": waiting.oldest_received_at,
            "oldest_age": duration_text(waiting.oldest_age_seconds(now)) if waiting.waiting else "",
            "finished": backlog.finished_count(since=since),
            "lag_p50": duration_text(lag[0.5]),
            "lag_p99": duration_text(lag[0.99]),
            "problems": problems,
            "waiting_url": messages_url(InboundMessage.State.RECEIVED),
        },
    )


@staff_member_required
@permission_required(OPERATE, raise_exception=True)
@require_POST
def replay(request: HttpRequest) -> HttpResponse:
    form = ReplayForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a partner and failed or unmatched messages to replay.")
        return redirect("contactcentre:operations")
    partner = form.cleaned_data["partner"]
    state = form.cleaned_data["state"]
    count = replay_messages(partner=partner, states=[state])
    label = InboundMessage.State(state).name.lower()
    messages.success(request, f"{count} {label} message(s) from {partner.name} queued again.")
    return redirect("contactcentre:operations")
