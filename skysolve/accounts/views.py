"""Sign up, sign in, sign out and the profile page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from skysolve.accounts import services
from skysolve.accounts.forms import DefaultsForm, SignupForm
from skysolve.accounts.models import Profile


def _next_url(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    # Only local targets: an open redirect after sign-in is a phishing aid.
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = SignupForm(request.POST)
        if form.is_valid():
            user = services.create_account(
                form.cleaned_data["username"],
                form.cleaned_data.get("email") or "",
                form.cleaned_data["password1"],
            )
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome, {user.username}. Your API key is below.")
            return redirect(_next_url(request, "/accounts/profile"))
    else:
        form = SignupForm()
    return render(request, "accounts/signup.html", {"form": form, "next": _next_url(request, "")})


@require_http_methods(["GET", "POST"])
def signin(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = AuthenticationForm(request, data=request.POST)
        if form.is_valid():
            login(request, form.get_user())
            return redirect(_next_url(request, "/upload"))
    else:
        form = AuthenticationForm(request)
    return render(request, "accounts/login.html", {"form": form, "next": _next_url(request, "")})


@require_POST
def signout(request: HttpRequest) -> HttpResponse:
    # POST only: a GET sign-out could be triggered by any page embedding the URL.
    logout(request)
    return redirect("front:home")


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    current = Profile.for_user(user)
    if request.method == "POST":
        form = DefaultsForm(request.POST, instance=current)
        if form.is_valid():
            services.update_defaults(
                user,
                display_name=form.cleaned_data["display_name"],
                allow_commercial_use=form.cleaned_data["default_allow_commercial_use"],
                allow_modifications=form.cleaned_data["default_allow_modifications"],
                publicly_visible=form.cleaned_data["default_publicly_visible"],
            )
            messages.success(request, "Defaults saved.")
            return redirect("accounts:profile")
    else:
        form = DefaultsForm(instance=current)
    ctx = {"form": form, "api_keys": services.api_keys(user)}
    return render(request, "accounts/profile.html", ctx)


@login_required
@require_POST
def regenerate_key(request: HttpRequest, key_id: str) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    if services.regenerate_api_key(user, int(key_id)) is None:
        messages.error(request, "No such API key.")
    else:
        messages.success(request, "New API key made; the old one no longer works.")
    return redirect("accounts:profile")
