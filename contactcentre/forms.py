"""Console forms: validation and labels only; the work is done by contactcentre.services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import User

from contactcentre.models import Case
from partners.models import Partner

CUSTOMER_CHANNELS = [("email", "E-mail"), ("sms", "SMS")]
CONTACT_CHANNELS = [c for c in Case.Channel.choices if c[0] != Case.Channel.PROACTIVE]


class OpenCaseForm(forms.Form):
    channel = forms.ChoiceField(choices=CONTACT_CHANNELS, label="How they got in touch")
    reason = forms.ChoiceField(choices=Case.Reason.choices, label="Contact reason")
    contact_name = forms.CharField(max_length=200, required=False, label="Contact's name")
    contact_detail = forms.CharField(max_length=200, required=False, label="Contact's phone or e-mail")
    summary = forms.CharField(max_length=300, required=False, label="Summary")
    take_ownership = forms.BooleanField(required=False, initial=True, label="I own this case")


class NoteForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="Note")
    visible_to_customer = forms.BooleanField(required=False, label="The customer can see this note")


class StatusForm(forms.Form):
    status = forms.ChoiceField(
        choices=[c for c in Case.Status.choices if c[0] != Case.Status.RESOLVED], label="Case status"
    )


class ResolveForm(forms.Form):
    resolution = forms.ChoiceField(choices=Case.Resolution.choices, label="Resolution")
    note = forms.CharField(max_length=1000, required=False, label="Closing note (optional)")


class ReasonNoteForm(forms.Form):
    note = forms.CharField(max_length=1000, required=False, label="Why (optional)")


class HandOverForm(forms.Form):
    to = forms.ModelChoiceField(queryset=User.objects.none(), label="Hand to", to_field_name="username")
    note = forms.CharField(max_length=1000, required=False, label="Handover note (optional)")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["to"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = agents()


class ChaseForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, label="Add to the chase (optional)"
    )


class InstructionForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label="What the customer asks")
    reschedule = forms.BooleanField(required=False, label="This is a request to change the delivery time")


class LinkForm(forms.Form):
    channel = forms.ChoiceField(choices=CUSTOMER_CHANNELS, label="Send the new link by")


class MessageForm(forms.Form):
    channel = forms.ChoiceField(choices=CUSTOMER_CHANNELS, label="Send by")
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="Message to the customer")


class ReassignForm(forms.Form):
    partner = forms.ModelChoiceField(
        queryset=Partner.objects.filter(is_active=True), label="New partner", to_field_name="slug"
    )
    partner_reference = forms.CharField(max_length=128, label="Their reference for the job")


def agents() -> Any:
    """Active users who can own cases (agents and supervisors)."""
    return (
        User.objects.filter(is_active=True, groups__permissions__codename="change_case")
        .distinct()
        .order_by("username")
    )
