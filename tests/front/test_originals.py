from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from django.contrib.auth.models import User
from django.test import Client
from PIL import Image

from skysolve.submissions import services
from skysolve.submissions.models import Submission
from tests.front.helpers import fail, make_user
from tests.jobs import job_of

pytestmark = pytest.mark.django_db


def fits_bytes(width: int = 300, height: int = 200) -> bytes:
    data = np.full((height, width), 100, dtype=np.uint16)
    data[:20, :] = 60000  # the first stored rows: the bottom of the picture
    out = io.BytesIO()
    fits.PrimaryHDU(data).writeto(out)
    return out.getvalue()


def upload(data: bytes, name: str, *, public: bool = True) -> Submission:
    alice = User.objects.filter(username="alice").first() or make_user("alice")
    args = {"publicly_visible": "y" if public else "n"}
    return services.submit_upload(services.Viewer(user=alice), args, data, name)


def picture(response: Any) -> Image.Image:
    raw = b"".join(response)
    return Image.open(io.BytesIO(raw))


def test_it_downloads_the_original_under_its_name(client: Client) -> None:
    data = fits_bytes()
    image = upload(data, "M31 <night>.fits").user_images.get()
    response = client.get(f"/user_images/{image.id}/original")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fits"
    assert response["Content-Disposition"] == 'attachment; filename="M31 <night>.fits"'
    assert b"".join(response) == data


def test_it_renders_fits_for_the_browser_the_right_way_up(client: Client) -> None:
    image = upload(fits_bytes(1600, 1000), "field.fits").user_images.get()
    response = client.get(f"/user_images/{image.id}/display")
    assert response["Content-Type"] == "image/jpeg"
    shown = picture(response).convert("L")
    assert shown.size == (800, 500)
    pixels = np.asarray(shown)
    assert pixels[-3:].mean() > 200 and pixels[:100].mean() < 100  # bright rows at the bottom
    small = picture(client.get(f"/user_images/{image.id}/thumbnail"))
    assert max(small.size) == 240


def test_it_draws_a_star_list(client: Client) -> None:
    alice = make_user("alice")
    args = {"x": [10.0, 390.0], "y": [10.0, 290.0], "image_width": 400, "image_height": 300}
    image = services.submit_xy(services.Viewer(user=alice), args).user_images.get()
    shown = np.asarray(picture(client.get(f"/user_images/{image.id}/thumbnail")).convert("L"))
    assert shown.shape == (180, 240)
    assert shown[4:8, 4:8].max() > 128 and shown[80:100, 100:140].max() < 60
    assert client.get(f"/user_images/{image.id}/original").status_code == 404


def test_it_answers_404_for_what_is_not_a_picture(client: Client) -> None:
    image = upload(b"certainly not an image", "notes.jpg").user_images.get()
    assert client.get(f"/user_images/{image.id}/display").status_code == 404
    # Listings show its thumbnail: a picture saying there is none, not a broken image.
    response = client.get(f"/user_images/{image.id}/thumbnail")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    assert b"no picture" in response.content


def test_it_keeps_private_originals_private_in_strict_mode(
    client: Client, settings: object
) -> None:
    settings.SKYSOLVE_PRIVATE_RESULTS = "strict"  # type: ignore[attr-defined]
    submission = upload(fits_bytes(), "secret.fits", public=False)
    image = submission.user_images.get()
    client.force_login(make_user("bob"))
    for kind in ("original", "display", "thumbnail"):
        assert client.get(f"/user_images/{image.id}/{kind}").status_code == 404
    client.force_login(submission.user)  # type: ignore[arg-type]
    response = client.get(f"/user_images/{image.id}/display")
    assert response.status_code == 200 and response["Cache-Control"].startswith("private")
    b"".join(response)


def test_it_shows_thumbnails_and_the_original_on_listings_and_results(client: Client) -> None:
    submission = upload(fits_bytes(), "field.fits")
    job = fail(submission)
    image = job_of(submission).user_image
    client.force_login(submission.user)  # type: ignore[arg-type]
    assert f'src="/user_images/{image.id}/thumbnail"' in client.get("/my/images").content.decode()
    body = client.get(f"/results/{job.id}").content.decode()
    assert f'src="/user_images/{image.id}/display"' in body
    assert f'href="/user_images/{image.id}/original"' in body


def png_bytes(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def test_it_shrinks_8_and_16_bit_pictures(client: Client) -> None:
    colour = upload(png_bytes(Image.new("RGB", (1000, 500), (200, 30, 30))), "red.png")
    shown = picture(client.get(f"/user_images/{colour.user_images.get().id}/display"))
    assert shown.size == (800, 400)
    assert np.asarray(shown)[200, 400].tolist() == pytest.approx([200, 30, 30], abs=3)
    deep = np.zeros((300, 600), dtype=np.uint16)
    deep[:, 300:] = 50000  # a 16-bit picture the engine stretches: dark left, bright right
    submission = upload(png_bytes(Image.fromarray(deep)), "deep.png")
    image = submission.user_images.get()
    grey = np.asarray(picture(client.get(f"/user_images/{image.id}/display")).convert("L"))
    assert grey.shape == (300, 600)
    assert grey[:, :250].mean() < 40 and grey[:, 350:].mean() > 200


def test_it_offers_no_original_view_of_what_is_not_a_picture(client: Client) -> None:
    submission = upload(b"a zip, say", "notes.jpg")
    job = fail(submission)
    image = submission.user_images.get()
    body = client.get(f"/results/{job.id}").content.decode()
    assert f"/user_images/{image.id}/display" not in body
    assert f'href="/user_images/{image.id}/original"' in body
