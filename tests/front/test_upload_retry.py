"""A refused upload says what to correct in the form's words and keeps the chosen file."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from skysolve.submissions.models import Submission
from skysolve.submissions.services import upload_path
from tests.front.helpers import form, make_user

pytestmark = pytest.mark.django_db

JPEG = b"\xff\xd8\xff\xe0" + b"not much of a picture" * 10


def errors(body: str) -> list[str]:
    return re.findall(
        r"<li>(.*?)</li>", "".join(re.findall(r'<ul class="errorlist[^>]*>(.*?)</ul>', body))
    )


def test_it_names_fields_as_the_form_does_and_keeps_the_file(client: Client) -> None:
    client.force_login(make_user("alice"))
    bad = form(scale_preset="custom", scale_lower="5", scale_upper="1")
    response = client.post("/upload", {**bad, "images": SimpleUploadedFile("m101.jpg", JPEG)})
    body = response.content.decode()
    assert errors(body) == ["The lower scale is larger than the upper scale"]
    assert "scale_lower" not in "".join(errors(body))
    token = re.search(r'name="held" value="([0-9a-f]+)"', body)
    assert token is not None and "<strong>m101.jpg</strong>" in body
    assert Submission.objects.count() == 0
    # Corrected, sent again without choosing the file: it is the file kept.
    good = form(scale_preset="custom", scale_lower="1", scale_upper="5", held=token.group(1))
    response = client.post("/upload", good)
    assert response.status_code == 302 and "/status/" in response["Location"]
    submission = Submission.objects.get()
    assert submission.original_filename == "m101.jpg"
    stored = upload_path(submission)
    assert stored is not None and stored.read_bytes() == JPEG
    # The token is spent: another post without a file is refused again.
    response = client.post("/upload", good)
    assert "Choose at least one image file or give a URL." in response.content.decode()


def test_it_does_not_hand_one_sessions_file_to_another(client: Client) -> None:
    client.force_login(make_user("alice"))
    bad = form(scale_preset="custom", scale_lower="5", scale_upper="1")
    body = client.post("/upload", {**bad, "images": SimpleUploadedFile("a.jpg", JPEG)}).content
    token = re.search(r'name="held" value="([0-9a-f]+)"', body.decode())
    assert token is not None
    bob = Client()
    bob.force_login(make_user("bob"))
    response = bob.post("/upload", form(held=token.group(1)))
    assert "Choose at least one image file or give a URL." in response.content.decode()
    assert Submission.objects.count() == 0


def test_it_reports_a_bad_ra_once(client: Client) -> None:
    client.force_login(make_user("alice"))
    data = form(center_ra="400", center_dec="3", images=SimpleUploadedFile("a.jpg", JPEG))
    assert errors(client.post("/upload", data).content.decode()) == [
        "RA in degrees must be in [0, 360)"
    ]
