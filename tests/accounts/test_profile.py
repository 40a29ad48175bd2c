from __future__ import annotations

import pytest
from django.test import Client

from skysolve.accounts.models import ApiKey, Profile
from skysolve.submissions import services
from tests.front.helpers import make_user

pytestmark = pytest.mark.django_db


def test_it_needs_sign_in(client: Client) -> None:
    response = client.get("/accounts/profile")
    assert response["Location"].startswith("/accounts/login/?next=")


def test_it_makes_a_key_for_people_without_one(client: Client) -> None:
    alice = make_user("alice")
    client.force_login(alice)
    body = client.get("/accounts/profile").content.decode()
    assert ApiKey.objects.get(user=alice).key in body


def test_it_regenerates_a_key_and_ends_its_sessions(client: Client) -> None:
    alice = make_user("alice")
    key = ApiKey.create_for(alice)
    old = key.key
    session = services.login(old)
    client.force_login(alice)
    response = client.post(f"/accounts/apikey/{key.pk}/regenerate")
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.key != old
    assert services.find_session(session.key) is None
    with pytest.raises(services.ServiceError, match="bad apikey"):
        services.login(old)
    assert key.key in client.get("/accounts/profile").content.decode()


def test_it_does_not_regenerate_someone_elses_key(client: Client) -> None:
    bobs = ApiKey.create_for(make_user("bob"))
    before = bobs.key
    client.force_login(make_user("alice"))
    client.post(f"/accounts/apikey/{bobs.pk}/regenerate")
    bobs.refresh_from_db()
    assert bobs.key == before


def test_it_saves_the_defaults_used_by_the_upload_form(client: Client) -> None:
    alice = make_user("alice")
    client.force_login(alice)
    data = {
        "display_name": "Alice A.",
        "default_allow_commercial_use": "n",
        "default_allow_modifications": "sa",
        "default_publicly_visible": "n",
    }
    assert client.post("/accounts/profile", data).status_code == 302
    profile = Profile.objects.get(user=alice)
    assert (profile.default_allow_commercial_use, profile.default_publicly_visible) == ("n", "n")
    body = client.get("/upload").content.decode()
    assert '<option value="n" selected>private</option>' in body
