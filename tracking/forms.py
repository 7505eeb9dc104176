"""The customer's forms on the tracking page: validated, length-limited, plain text only."""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from zoneinfo import available_timezones

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from tracking.models import Shipment
from tracking.public import reschedule_choices

PHONE = re.compile(r"^\+?[0-9 ()\-]{7,24}$")


def clean_text(value: str, *, single_line: bool = True) -> str:
    """Drop control characters (and line breaks where one line is expected); trim."""
    kept = []
    for char in value:
        if (char in "\n\t" and not single_line) or unicodedata.category(char)[0] != "C":
            kept.append(char)
        elif char == "\n":
            kept.append(" ")
    return "".join(kept).strip()


class TextField(forms.CharField):
    """A CharField that strips control characters; `multiline` keeps line breaks."""

    def __init__(self, *, multiline: bool = False, **kwargs: Any) -> None:
        self.multiline = multiline
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> str:
        return clean_text(str(super().to_python(value)), single_line=not self.multiline)


class InstructionsForm(forms.Form):
    safe_place = TextField(label=_("Safe place"), max_length=100, help_text=_("For example: the porch."))
    neighbour = TextField(
        label=_("Neighbour who can take it"), max_length=100, help_text=_("House number or name.")
    )
    access_code = TextField(label=_("Access or gate code"), max_length=40)
    note = TextField(
        label=_("Note for the courier"),
        max_length=500,
        multiline=True,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not any(data.get(name) for name in ("safe_place", "neighbour", "access_code", "note")):
            raise ValidationError(_("Fill in at least one of the fields."))
        return data


class RescheduleForm(forms.Form):
    window = forms.ChoiceField(label=_("New delivery day"))

    def __init__(self, *args: Any, shipment: Shipment, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["window"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = reschedule_choices(shipment)


class CancelForm(forms.Form):
    confirm = forms.BooleanField(label=_("Yes, I want to cancel this delivery"))
    reason = TextField(label=_("Why? (optional)"), max_length=300)


class SubscribeForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"), required=False, max_length=254)
    phone = forms.CharField(label=_("Mobile number for texts"), required=False, max_length=24)
    time_zone = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def clean_phone(self) -> str:
        phone = clean_text(self.cleaned_data.get("phone") or "")
        if not phone:
            return ""
        if not PHONE.match(phone):
            raise ValidationError(_("Enter a mobile number, for example +44 7700 900123."))
        digits = re.sub(r"\D", "", phone)
        return f"+{digits}" if phone.startswith("+") else digits

    def clean_time_zone(self) -> str:
        zone = self.cleaned_data.get("time_zone") or ""
        return zone if zone in available_timezones() else ""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("email") and not data.get("phone") and not self.errors:
            raise ValidationError(_("Give an e-mail address, a mobile number, or both."))
        return data


class ProblemForm(forms.Form):
    REASONS = [
        ("late", _("It is late")),
        ("failed_attempt", _("A delivery attempt failed")),
        ("not_received", _("It says delivered but I do not have it")),
        ("damaged", _("It arrived damaged")),
        ("other", _("Something else")),
    ]
    reason = forms.ChoiceField(label=_("What is wrong?"), choices=REASONS)
    description = TextField(
        label=_("Tell us more"), max_length=1000, multiline=True, widget=forms.Textarea(attrs={"rows": 4})
    )
    contact = TextField(label=_("How can we reach you? (e-mail or phone, optional)"), max_length=200)


class SecondFactorForm(forms.Form):
    reference = TextField(label=_("Order reference"), max_length=64, required=True)
    postcode = TextField(label=_("Delivery postcode"), max_length=16, required=True)
