from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from skysolve.accounts.models import Profile
from skysolve.front.results_page import grid_text, reference_rows
from skysolve.submissions.transitions import PICTURES
from tests.front.helpers import fail, make_user, solve, submit
from tests.jobs import job_of

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
    # The helper records no input format: the API's number is the angle itself.
    assert "<th>Orientation</th><td>65.47° East of North</td>" in body
    assert "positive (+1, not flipped)" in body


@pytest.mark.parametrize(("image_format", "api"), [("jpeg", 114.53), ("fits", 65.47)])
def test_it_shows_novas_orientation_once(client: Client, image_format: str, api: float) -> None:
    job = solve(submit(make_user("alice"), filename="big dipper.jpg"))
    job.result = {**job.result, "image_format": image_format}
    job.save()
    body = client.get(f"/results/{job.id}").content.decode()
    assert body.count("East of North") == 1
    assert f"<th>Orientation</th><td>{api:.2f}° East of North</td>" in body


@pytest.mark.parametrize(
    ("commercial", "modifications", "profile", "shown"),
    [
        ("n", "sa", ("d", "d"), "CC BY-NC-SA 4.0 (Attribution-NonCommercial-ShareAlike)"),
        ("y", "y", ("d", "d"), "CC BY 4.0 (Attribution)"),
        ("d", "d", ("y", "n"), "CC BY-ND 4.0 (Attribution-NoDerivatives)"),
        ("d", "d", ("d", "d"), "no licence chosen: all rights reserved by the owner"),
    ],
)
def test_it_names_the_creative_commons_licence(
    client: Client, commercial: str, modifications: str, profile: tuple[str, str], shown: str
) -> None:
    alice = make_user("alice")
    Profile.objects.create(
        user=alice, default_allow_commercial_use=profile[0], default_allow_modifications=profile[1]
    )
    job = solve(submit(alice, allow_commercial_use=commercial, allow_modifications=modifications))
    body = client.get(f"/results/{job.id}").content.decode()
    assert shown in body
    assert "owner&#x27;s default" not in body


def test_it_says_the_pictures_are_coming_while_they_are_drawn(client: Client) -> None:
    job = solve(submit(make_user("alice")), pictures=())
    job.stage = PICTURES
    job.lease_expires = timezone.now() + timedelta(minutes=5)
    job.save()
    body = client.get(f"/results/{job.id}").content.decode()
    assert 'data-pending="1"' in body and "are being drawn now" in body
    status = client.get(f"/status/{job.user_image.submission.id}/json").json()
    assert status["jobs"][0]["pictures_pending"] is True
    # A worker that died while drawing: its lease ran out, nothing more will come.
    job.lease_expires = timezone.now() - timedelta(seconds=1)
    job.save()
    body = client.get(f"/results/{job.id}").content.decode()
    assert 'data-pending="0"' in body
    assert 'id="pictures-pending" class="pending" role="status" aria-live="polite" hidden' in body


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


def test_it_links_an_all_sky_frames_altitude_and_azimuth_file(client: Client) -> None:
    job = solve(submit(make_user("alice"), filename="allsky.fits"))
    files = {**job.result["files"], "altaz": job.result["files"]["wcs"]}
    job.result = {**job.result, "files": files}
    job.save()
    body = client.get(f"/results/{job.id}").content.decode()
    assert f'href="/altaz_file/{job.id}"' in body
    assert "altitude and azimuth of every pixel (altaz.fits)" in body


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


def test_it_lists_each_object_once_with_all_its_names(client: Client) -> None:
    names = ["Part of the constellation Canes Venatici (CVn)", "NGC 5194", "M 51"]
    job = solve(submit(make_user("alice")), objects=[*names, "Whirlpool Galaxy", "NGC 5195"])
    job.result = {
        **job.result,
        "annotations": [
            {"type": "ngc", "names": ["NGC 5194", "M 51", "Whirlpool Galaxy"], "radius": 9.0},
            {"type": "ngc", "names": ["NGC 5195"], "radius": 3.0},
        ],
    }
    job.save()
    body = client.get(f"/results/{job.id}").content.decode()
    objects = body[body.index('id="objects"') :].split("</ul>")[0]
    assert objects.count("<li>") == 3
    assert ">NGC 5194</a> · <a" in objects and ">Whirlpool Galaxy</a></li>" in objects


def test_it_says_how_good_the_fit_is(client: Client) -> None:
    job = solve(submit(make_user("alice")), pictures=("annotated_display", "residuals_display"))
    quality = {
        "matched_stars": 212, "band": "G", "rms_px": 0.214, "rms_arcsec": 36.3,
        "median_px": 0.15, "sip_order": 3, "order_chosen_by": "cross-validation",
        "ra_error_arcsec": 1.2, "dec_error_arcsec": 1.3, "pixscale_error": 0.0071,
        "rotation_error_deg": 0.0025, "limiting_mag": 8.7, "zero_point": 13.76,
        "zero_point_scatter": 0.42, "zero_point_stars": 150, "fwhm_px": 3.1,
        "elongation": 1.12, "shape_stars": 80, "refit": True, "median_arcsec": 25.4,
        "fwhm_grid": [[3.0, 3.1, 3.2], [3.0, None, 3.1], [4.0, 4.5, 5.0]],
        "elongation_grid": [[1.1, 1.1, 1.1], [1.1, 1.2, 1.1], [1.3, 1.4, 1.6]],
        "reference_catalogue": "Gaia DR3", "reference_epoch": 2016.0,
    }  # fmt: skip
    job.result = {**job.result, "quality": quality}
    job.save()
    body = client.get(f"/results/{job.id}").content.decode()
    assert "How good the fit is" in body
    assert "212 (G catalogue)" in body
    # The epoch the WCS means, beside the catalogue.
    assert "<th>Matched stars</th><td>212 (G catalogue)</td></tr><tr><th>Fitted to</th>" in body
    assert "<td>Gaia DR3 stars at epoch J2016.0</td>" in body
    assert "RMS 0.214 px = 36.30″, median 0.150 px = 25.40″" in body
    assert "SIP order 3 (chosen by cross-validation)" in body
    assert "RA 1.2″, Dec 1.3″" in body
    assert "13.76 ± 0.42 mag (150 stars" in body
    assert "FWHM 3.10 px, elongation 1.12" in body
    # Across the frame, rows from the top as the picture shows them (a JPEG: y = 1 on top).
    assert "3.00 3.10 3.20 / 3.00 · 3.10 / 4.00 4.50 5.00 (rows top to bottom" in body
    assert "1.10 1.10 1.10 / 1.10 1.20 1.10 / 1.30 1.40 1.60 (rows top" in body
    assert f'data-src="/residuals_display/{job.id}"' in body


def test_a_kept_answer_says_its_order_is_the_solvers(client: Client) -> None:
    job = solve(submit(make_user("alice")))
    quality = {
        "matched_stars": 40, "rms_px": 0.8, "sip_order": 2, "order_chosen_by": "the solver",
        "ra_error_arcsec": None, "refit": False,
    }  # fmt: skip
    job.result = {**job.result, "quality": quality}
    job.save()
    body = client.get(f"/results/{job.id}").content.decode()
    assert "SIP order 2 (as the solver found it)" in body and "cross-validation" not in body
    assert body.count("the refit was not better") == 1
    assert "RA —″" not in body and "RA —, Dec —" in body
    # Recorded before the quality named its reference stars: no row for them.
    assert "Fitted to" not in body


def test_an_all_sky_answer_shows_its_lens_figures(client: Client) -> None:
    """The quality of an all-sky answer (skysolve.engine.allsky.quality), as
    iallsky_no_clouds.jpg gives it: no SIP order, no match radius, no "nan"."""
    job = solve(submit(make_user("alice"), filename="allsky.jpg"))
    quality = {
        "matched_stars": 1347, "rms_px": 0.8628, "median_px": 0.659, "rms_arcsec": 210.01,
        "median_arcsec": 160.06, "sip_order": None, "order_chosen_by": "the lens search",
        "lens_projection": "equidistant",
        "lens_terms": ["radial k1 k2", "shear", "decentring", "surface of order 11"],
        "ra_error_arcsec": 10.7223, "dec_error_arcsec": 10.1556, "pixscale_error": 0.0304496,
        "rotation_error_deg": 0.002039, "match_radius_px": None, "catalogue_stars": None,
        "band": "G", "limiting_mag": 6.6, "zero_point": 11.32, "zero_point_scatter": 0.505,
        "zero_point_stars": 1300, "fwhm_px": 5.904, "elongation": 1.176,
        "fwhm_grid": [[5.3, 4.8, 7.0], [6.4, None, 6.3], [5.3, 5.4, 6.1]],
        "elongation_grid": None, "shape_stars": 47,
    }  # fmt: skip
    job.result = {**job.result, "quality": quality}
    job.save()
    body = client.get(f"/results/{job.id}").content.decode()
    table = body[body.index('id="quality"') :].split("</table>")[0]
    assert "1347 (G catalogue)" in table
    assert "RMS 0.863 px = 210.01″, median 0.659 px = 160.06″" in table
    assert (
        "all-sky lens model, equidistant projection with radial k1 k2, shear, decentring, "
        "surface of order 11 (lens file)"
    ) in table
    assert "RA 10.7″, Dec 10.2″" in table and "0.03 arcsec/pixel, 0.002°" in table
    assert "11.32 ± 0.51 mag (1300 stars" in table and "FWHM 5.90 px" in table
    assert "nan" not in table.lower() and "None" not in table and "Final fit" not in table


def test_an_answer_too_few_stars_back_for_a_refit_says_so(client: Client) -> None:
    job = solve(submit(make_user("alice")))
    reason = "too few stars matched for a refit (fewer than 8)"
    quality = {
        "matched_stars": 7, "rms_px": 0.12, "median_px": 0.1, "sip_order": 2,
        "order_chosen_by": "the solver", "ra_error_arcsec": None, "refit": False,
        "kept_reason": reason,
    }  # fmt: skip
    job.result = {**job.result, "quality": quality}
    job.save()
    body = client.get(f"/results/{job.id}").content.decode()
    # The reason once, in its own row; the distortion row says whose the order is.
    assert body.count(reason) == 1 and f"{reason}: the solver&#x27;s WCS kept" in body
    assert "SIP order 2 (as the solver found it)</td>" in body
    assert "the refit was not better" not in body


def test_an_answer_with_nothing_to_measure_says_why_it_was_kept(client: Client) -> None:
    """No catalogue to refit against: no figures, but why, and the solver's stars."""
    job = solve(submit(make_user("alice")))
    quality = {
        "refit": False, "kept_reason": "no catalogue to match against",
        "reference_catalogue": None, "reference_epoch": None,
        "reference_epoch_reason": "skysolve knows no epoch for the stars of index-5203-07.fits",
    }  # fmt: skip
    job.result = {**job.result, "quality": quality}
    job.save()
    body = client.get(f"/results/{job.id}").content.decode()
    table = body[body.index('id="quality"') :].split("</table>")[0]
    assert table.count("no catalogue to match against") == 1
    assert "no catalogue to match against: the solver&#x27;s WCS kept" in table
    assert (
        "the solver&#x27;s catalogue, epoch unknown: skysolve knows no epoch for the stars "
        "of index-5203-07.fits"
    ) in table
    assert "Matched stars" not in table and "None" not in table


def test_a_refit_to_stars_of_no_known_epoch_does_not_call_them_the_solvers() -> None:
    """The final fit against an index file of another series (the densest
    installed): its stars, not the solver's, are the ones without an epoch."""
    why = "skysolve knows no epoch for the stars of index-5203-07.fits"
    unnamed = {"reference_catalogue": None, "reference_epoch": None, "reference_epoch_reason": why}
    [refit] = reference_rows({"refit": True, **unnamed})
    assert refit.value == f"the final fit's catalogue, epoch unknown: {why}"
    [kept] = reference_rows({"refit": False, **unnamed})
    assert kept.value == f"the solver's catalogue, epoch unknown: {why}"


def test_it_shows_no_fit_quality_when_none_was_measured(solved_body: tuple[int, str]) -> None:
    _, body = solved_body
    assert "How good the fit is" not in body


def test_a_fits_pictures_grid_is_shown_with_its_last_row_on_top() -> None:
    """FITS pictures are shown with +y up: the grid's rows from y = 1 read bottom up."""
    grid: list[list[float | None]] = [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [3.0, None, 3.0]]
    assert grid_text(grid, bottom_up=True).startswith("3.00 · 3.00 / 2.00 2.00 2.00 / 1.00")
    assert grid_text(grid, bottom_up=False).startswith("1.00 1.00 1.00 / 2.00")
