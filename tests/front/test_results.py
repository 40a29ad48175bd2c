from __future__ import annotations

import pytest
from django.test import Client

from tests.front.helpers import fail, job_of, make_user, solve, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def solved_body(client: Client) -> tuple[int, str]:
    job = solve(submit(make_user("alice"), filename="big dipper.jpg"))
    response = client.get(f"/results/{job.id}")
    assert response.status_code == 200
    return job.id, response.content.decode()


def test_it_shows_the_calibration_in_degrees_and_sexagesimal(solved_body: tuple[int, str]) -> None:
    _, body = solved_body
    assert "187.185000° = 12h 28m 44.40s" in body
    assert "+56.713000° = +56° 42′ 46.8″" in body
    assert "169.7 arcsec/pixel" in body
    assert "33.9° × 23.9°" in body
    # The helper records no input format: up is the -y axis's, the API's number the angle itself.
    assert "245.47° East of North" in body
    assert "65.47° — nova&#x27;s number" in body
    assert "positive (+1, not flipped)" in body


@pytest.mark.parametrize(
    ("image_format", "up", "api"), [("jpeg", 245.47, 114.53), ("fits", 65.47, 65.47)]
)
def test_it_shows_the_up_direction_beside_novas_orientation(
    client: Client, image_format: str, up: float, api: float
) -> None:
    job = solve(submit(make_user("alice"), filename="big dipper.jpg"))
    job.result = {**job.result, "image_format": image_format}
    job.save()
    body = client.get(f"/results/{job.id}").content.decode()
    assert f"{up:.2f}° East of North" in body
    assert f"{api:.2f}° — nova&#x27;s number" in body


def test_it_offers_the_overlays_that_exist(solved_body: tuple[int, str]) -> None:
    job_id, body = solved_body
    assert f'id="result-image" src="/annotated_display/{job_id}"' in body
    assert f'data-src="/extraction_image_display/{job_id}"' in body
    assert f'data-src="/grid_display/{job_id}"' in body
    # The helper made no red-green picture, so there is no button for it.
    assert "red_green_image_display" not in body


def test_it_links_every_result_file(solved_body: tuple[int, str]) -> None:
    job_id, body = solved_body
    assert f'href="/wcs_file/{job_id}"' in body
    assert f'href="/joblog/{job_id}"' in body


def test_it_lists_objects_map_and_command(solved_body: tuple[int, str]) -> None:
    _, body = solved_body
    assert "Part of the constellation Ursa Major (UMa)" in body
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="skymap"' in body
    assert "skysolve solve &#x27;big dipper.jpg&#x27; --scale-units degwidth" in body


def test_it_shows_nearby_public_images_only(client: Client) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    job = solve(submit(alice, filename="mine.jpg"))
    solve(submit(bob, filename="near-public.jpg"), ra=189.0, dec=55.0)
    solve(submit(bob, filename="near-private.jpg", public=False), ra=188.0, dec=56.0)
    solve(submit(bob, filename="far.jpg"), ra=10.0, dec=-40.0)
    body = client.get(f"/results/{job.id}").content.decode()
    assert "near-public.jpg" in body
    assert "near-private.jpg" not in body
    assert "far.jpg" not in body


def test_it_shows_why_a_solve_failed(client: Client) -> None:
    job = fail(submit(make_user("alice")), "only 3 sources found")
    body = client.get(f"/results/{job.id}").content.decode()
    assert "only 3 sources found" in body
    assert "Calibration" not in body


def test_it_shows_an_unfinished_job(client: Client) -> None:
    job = job_of(submit(make_user("alice")))
    response = client.get(f"/results/{job.id}")
    assert response.status_code == 200
    assert "queued" in response.content.decode()


def test_it_answers_404_for_an_unknown_job(client: Client) -> None:
    assert client.get("/results/999").status_code == 404


def test_it_sends_user_images_to_their_latest_job(client: Client) -> None:
    job = solve(submit(make_user("alice")))
    response = client.get(f"/user_images/{job.user_image.id}")
    assert response.status_code == 302
    assert response["Location"] == f"/results/{job.id}"


def test_it_says_how_good_the_fit_is(client: Client) -> None:
    job = solve(submit(make_user("alice")), pictures=("annotated_display", "residuals_display"))
    quality = {
        "matched_stars": 212, "band": "G", "rms_px": 0.214, "rms_arcsec": 36.3,
        "median_px": 0.15, "sip_order": 3, "order_chosen_by": "cross-validation",
        "ra_error_arcsec": 1.2, "dec_error_arcsec": 1.3, "pixscale_error": 0.0071,
        "rotation_error_deg": 0.0025, "limiting_mag": 8.7, "zero_point": 13.76,
        "zero_point_scatter": 0.42, "zero_point_stars": 150, "fwhm_px": 3.1,
        "elongation": 1.12, "shape_stars": 80, "refit": True,
    }  # fmt: skip
    job.result = {**job.result, "quality": quality}
    job.save()
    body = client.get(f"/results/{job.id}").content.decode()
    assert "How good the fit is" in body
    assert "212 (G catalogue)" in body
    assert "RMS 0.214 px = 36.30″" in body
    assert "SIP order 3 (chosen by cross-validation)" in body
    assert "RA 1.2″, Dec 1.3″" in body
    assert "13.76 ± 0.42 mag (150 stars" in body
    assert "FWHM 3.10 px, elongation 1.12" in body
    assert f'data-src="/residuals_display/{job.id}"' in body


def test_it_shows_no_fit_quality_when_none_was_measured(solved_body: tuple[int, str]) -> None:
    _, body = solved_body
    assert "How good the fit is" not in body
