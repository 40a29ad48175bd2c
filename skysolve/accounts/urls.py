from __future__ import annotations

from django.urls import re_path

from skysolve.accounts import views

app_name = "accounts"

# Optional trailing slashes: Django's default LOGIN_URL is /accounts/login/ and
# the site runs with APPEND_SLASH off (the API must never redirect a POST).
urlpatterns = [
    re_path(r"^accounts/signup/?$", views.signup, name="signup"),
    re_path(r"^accounts/login/?$", views.signin, name="login"),
    re_path(r"^accounts/logout/?$", views.signout, name="logout"),
    re_path(r"^accounts/profile/?$", views.profile, name="profile"),
    re_path(
        r"^accounts/apikey/(?P<key_id>[0-9]+)/regenerate/?$",
        views.regenerate_key,
        name="regenerate_key",
    ),
]
