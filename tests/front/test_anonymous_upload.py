from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from skysolve.community.models import Album
from skysolve.submissions.models import Job, Submission
from tests.front.helpers import form

pytestmark = pytest.mark.django_db


def image(name: str = "m101.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"\xff\xd8\xff\xe0 pretend jpeg", content_type="image/jpeg")


@pytest.fixture
def open_upload(settings: Any) -> Any:
    settings.SKYSOLVE_ANONYMOUS_WEB_UPLOAD = True
    return settings


def test_it_is_off_by_default(client: Client) -> None:
    assert "to upload images" in client.get("/").content.decode()
    response = client.post("/upload", form(images=image()))
    assert response.status_code == 302 and "/accounts/login" in response["Location"]
    assert not Submission.objects.exists()


def test_it_takes_an_anonymous_upload_and_makes_it_public(client: Client, open_upload: Any) -> None:
    assert "it will be public" in client.get("/").content.decode()
    page = client.get("/upload").content.decode()
    assert "You are not signed in" in page and 'name="album"' not in page
    response = client.post(
        "/upload", form(images=image(), publicly_visible="n", album="Sneaky album")
    )
    submission = Submission.objects.get()
    assert response["Location"] == f"/status/{submission.id}"
    assert submission.user is None and submission.publicly_visible == "y"
    assert submission.anonymous_session.startswith("web:")
    assert not Album.objects.exists()
    job = Job.objects.get()
    assert job.owner_key == f"anon:{submission.anonymous_session}"
    assert client.get(f"/status/{submission.id}").status_code == 200


def test_it_keeps_one_browsers_uploads_together(client: Client, open_upload: Any) -> None:
    client.post("/upload", form(images=image("a.jpg")))
    client.post("/upload", form(images=image("b.jpg")))
    Client().post("/upload", form(images=image("c.jpg")))
    sessions = dict(Submission.objects.values_list("original_filename", "anonymous_session"))
    assert sessions["a.jpg"] == sessions["b.jpg"] != sessions["c.jpg"]


def test_it_limits_anonymous_uploads_per_address(client: Client, open_upload: Any) -> None:
    open_upload.SKYSOLVE_RATE_LIMIT_ANONYMOUS_PER_HOUR = 2
    for name in ("a.jpg", "b.jpg"):
        assert client.post("/upload", form(images=image(name))).status_code == 302
    response = client.post("/upload", form(images=image("c.jpg")))
    assert response.status_code == 429
    assert "without signing in" in response.content.decode()
    assert Submission.objects.count() == 2


def test_it_checks_csrf_for_anonymous_uploads(open_upload: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    assert client.post("/upload", form(images=image())).status_code == 403
    client.get("/upload")
    token = client.cookies["csrftoken"].value
    response = client.post("/upload", form(images=image(), csrfmiddlewaretoken=token))
    assert response.status_code == 302
    assert Submission.objects.count() == 1
