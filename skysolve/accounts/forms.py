from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User

from skysolve.accounts.models import Profile


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=False, help_text="Optional; shown to API clients at login.")

    class Meta:
        model = User
        fields = ("username", "email")


class DefaultsForm(forms.ModelForm):
    class Meta:
        model = Profile
        fields = (
            "display_name",
            "default_allow_commercial_use",
            "default_allow_modifications",
            "default_publicly_visible",
        )
        labels = {
            "default_allow_commercial_use": "Allow commercial use",
            "default_allow_modifications": "Allow modifications",
            "default_publicly_visible": "Visibility of new images",
        }
