from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from skysolve.accounts.models import Profile
from skysolve.community.models import Album
from skysolve.submissions.models import Job, Submission
from tests.front.helpers import form, make_user

pytestmark = pytest.mark.django_db


def image(name: str = "m101.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"\xff\xd8\xff\xe0 pretend jpeg", content_type="image/jpeg")


@pytest.fixture
def alice_client(client: Client) -> Client:
    client.force_login(make_user("alice"))
    return client


def test_it_sends_anonymous_visitors_to_sign_in(client: Client) -> None:
    response = client.get("/upload")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/upload")
    assert client.get(response["Location"]).status_code == 200


def test_it_shows_the_form_with_the_profile_defaults(client: Client) -> None:
    alice = make_user("alice")
    profile = Profile.for_user(alice)
    profile.default_publicly_visible = "n"
    profile.default_allow_modifications = "sa"
    profile.save()
    client.force_login(alice)
    response = client.get("/upload")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'value="n" selected' in body
    assert 'value="sa" selected' in body
    assert "wide field (&gt;10°)" in body
    assert "telescope (&lt;1°)" in body


def test_it_submits_one_file_and_goes_to_its_status_page(alice_client: Client) -> None:
    response = alice_client.post("/upload", form(images=image()))
    submission = Submission.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/status/{submission.id}"
    assert submission.original_filename == "m101.jpg"
    assert submission.user is not None and submission.user.username == "alice"
    assert Job.objects.filter(user_image__submission=submission, status=Job.QUEUED).count() == 1


def test_it_passes_every_option_on(alice_client: Client) -> None:
    data = form(
        images=image(),
        scale_preset="custom",
        scale_units="arcsecperpix",
        scale_type="ev",
        scale_est="1.5",
        scale_err="10",
        center_ra="12:28:44.4",
        center_dec="-0:30:00",
        radius="2",
        parity="1",
        downsample_factor="2",
        tweak_order="3",
        positional_error="1.5",
        crpix_center="on",
        invert="on",
        allow_commercial_use="n",
        allow_modifications="sa",
        publicly_visible="n",
        album="Spring galaxies",
    )
    alice_client.post("/upload", data)
    submission = Submission.objects.get()
    p = submission.parameters
    assert (p["scale_units"], p["scale_type"]) == ("arcsecperpix", "ev")
    assert (p["scale_est"], p["scale_err"]) == (1.5, 10.0)
    assert p["center_ra"] == pytest.approx(187.185)
    assert p["center_dec"] == pytest.approx(-0.5)
    assert (p["radius"], p["parity"], p["downsample_factor"]) == (2.0, 1, 2.0)
    assert (p["tweak_order"], p["positional_error"]) == (3, 1.5)
    assert p["crpix_center"] and p["invert"] and not p["use_sextractor"]
    assert (submission.allow_commercial_use, submission.allow_modifications) == ("n", "sa")
    assert submission.publicly_visible == "n"
    assert submission.user_images.get().publicly_visible == "n"
    assert Album.objects.get(title="Spring galaxies").user_images.count() == 1


def test_an_empty_tweak_order_leaves_the_order_to_the_final_fit(alice_client: Client) -> None:
    page = alice_client.get("/upload").content.decode()
    field = page[page.index('name="tweak_order"') :].split(">")[0]
    assert 'placeholder="auto"' in field  # the form says what empty means
    alice_client.post("/upload", form(images=image(), tweak_order=""))
    assert Submission.objects.get().parameters.get("tweak_order") is None


def test_it_turns_a_preset_into_scale_bounds(alice_client: Client) -> None:
    alice_client.post("/upload", form(images=image(), scale_preset="wide"))
    p = Submission.objects.get().parameters
    assert (p["scale_units"], p["scale_lower"], p["scale_upper"]) == ("degwidth", 10.0, 180.0)


def test_it_keeps_a_zero_position(alice_client: Client) -> None:
    alice_client.post("/upload", form(images=image(), center_ra="0", center_dec="0"))
    p = Submission.objects.get().parameters
    assert (p["center_ra"], p["center_dec"]) == (0.0, 0.0)


def test_it_makes_one_submission_per_file(alice_client: Client) -> None:
    response = alice_client.post("/upload", form(images=[image("a.jpg"), image("b.jpg")]))
    assert response.status_code == 302
    assert response["Location"] == "/my/submissions"
    names = sorted(Submission.objects.values_list("original_filename", flat=True))
    assert names == ["a.jpg", "b.jpg"]
    assert Job.objects.count() == 2


def test_it_submits_a_url(alice_client: Client) -> None:
    alice_client.post("/upload", form(url="https://example.org/sky/m42.fits"))
    submission = Submission.objects.get()
    assert submission.source == Submission.SOURCE_URL
    assert submission.url == "https://example.org/sky/m42.fits"


def test_it_needs_a_file_or_a_url(alice_client: Client) -> None:
    response = alice_client.post("/upload", form())
    assert response.status_code == 200
    assert "Choose at least one image file" in response.content.decode()
    assert not Submission.objects.exists()


def test_it_explains_a_bad_position(alice_client: Client) -> None:
    response = alice_client.post("/upload", form(images=image(), center_ra="25h", center_dec="1"))
    assert "RA must be degrees" in response.content.decode()
    assert not Submission.objects.exists()


def test_it_refuses_an_empty_file(alice_client: Client) -> None:
    empty = SimpleUploadedFile("empty.jpg", b"", content_type="image/jpeg")
    response = alice_client.post("/upload", form(images=empty))
    assert response.status_code == 200
    assert not Submission.objects.exists()


def test_it_refuses_a_file_over_the_limit(alice_client: Client, settings: Any) -> None:
    settings.SKYSOLVE_MAX_UPLOAD_BYTES = 10
    response = alice_client.post("/upload", form(images=image()))
    assert "larger than" in response.content.decode()
    assert not Submission.objects.exists()


def test_it_shows_solver_option_errors_from_the_service(alice_client: Client) -> None:
    data = form(images=image(), scale_preset="custom", scale_lower="10", scale_upper="1")
    response = alice_client.post("/upload", data)
    assert response.status_code == 200
    assert 'class="errors"' in response.content.decode()
    assert not Submission.objects.exists()


def test_it_rejects_a_post_without_csrf_token() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("bob"))
    response = client.post("/upload", form(images=image()))
    assert response.status_code == 403
    assert not Submission.objects.exists()


def test_it_accepts_a_post_with_the_csrf_token() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("bob"))
    client.get("/upload")
    token = client.cookies["csrftoken"].value
    response = client.post("/upload", form(images=image(), csrfmiddlewaretoken=token))
    assert response.status_code == 302
    assert Submission.objects.count() == 1
