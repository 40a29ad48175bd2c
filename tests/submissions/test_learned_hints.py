"""Which earlier solve gives a job its learned hints, and when none does."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import numpy as np
import pytest
from astropy.io import fits
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image

from skysolve.submissions.learned_hints import learned_hints_for
from skysolve.submissions.models import Job
from tests.api.helpers import call, session_for, solve_all, submit_xy
from tests.jobs import job_of
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db

# FakeSolver solves every image as 400x300 at 1.0907"/px, centred at (169.966, 13.221).
SIZE = {"image_width": 400, "image_height": 300}


def submit_batch(client: Client, session: str) -> dict:
    """Two star lists in one submission."""
    lists = {"x": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], "y": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]}
    data: dict = call(client, "/api/url_upload", {"session": session, **lists, **SIZE})
    assert data["status"] == "success", data
    return data


def solved_job(client: Client, session: str) -> Job:
    job = job_of(submit_xy(client, session, **SIZE))
    solve_all(FakeSolver())
    job.refresh_from_db()
    assert job.status == Job.SUCCESS
    return job


def test_it_offers_the_owners_latest_solve_of_the_same_size(client: Client) -> None:
    alice = session_for("alice")
    older = solved_job(client, alice)
    latest = solved_job(client, alice)
    Job.objects.filter(pk=older.pk).update(finished_at=timezone.now() - timedelta(hours=2))
    waiting = job_of(submit_xy(client, alice, **SIZE))
    hints = learned_hints_for(waiting)
    assert len(hints) == 1  # one per image size: the latest
    hint = hints[0]
    assert hint.source == f"earlier solve of job {latest.pk}"
    assert (hint.image_width, hint.image_height) == (400, 300)
    assert hint.scale_lower < 1.0907 < hint.scale_upper
    assert hint.scale_upper / hint.scale_lower < 1.5
    assert hint.center_ra == pytest.approx(169.966) and hint.center_dec == pytest.approx(13.221)


def test_it_prefers_a_solved_image_of_the_same_submission(client: Client) -> None:
    alice = session_for("alice")
    solved_job(client, alice)  # another submission, solved later than the sibling below
    data = submit_batch(client, alice)
    first, second = Job.objects.filter(user_image__submission_id=data["subid"]).order_by("pk")
    Job.objects.filter(pk=first.pk).update(
        status=Job.SUCCESS,
        pixscale=2.0,
        ra=10.0,
        dec=20.0,
        result=dict(SIZE),
        finished_at=timezone.now() - timedelta(hours=1),
    )
    hints = learned_hints_for(second)
    assert hints[0].source == f"earlier solve of job {first.pk}"
    assert hints[0].scale_lower < 2.0 < hints[0].scale_upper


def test_it_offers_nothing_for_another_size(client: Client) -> None:
    alice = session_for("alice")
    solved_job(client, alice)
    waiting = job_of(submit_xy(client, alice, image_width=800, image_height=600))
    assert learned_hints_for(waiting) == ()


def test_it_offers_nothing_from_another_owner(client: Client) -> None:
    solved_job(client, session_for("alice"))
    waiting = job_of(submit_xy(client, session_for("bob"), **SIZE))
    assert learned_hints_for(waiting) == ()


def test_it_offers_nothing_from_another_night(client: Client) -> None:
    alice = session_for("alice")
    old = solved_job(client, alice)
    Job.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(hours=13))
    waiting = job_of(submit_xy(client, alice, **SIZE))
    assert learned_hints_for(waiting) == ()
    assert learned_hints_for(waiting, window=timedelta(hours=14)) != ()


@pytest.mark.parametrize(
    "given",
    [
        {"scale_units": "arcsecperpix", "scale_lower": 1.0, "scale_upper": 1.2},
        {"center_ra": 170.0, "center_dec": 13.0, "radius": 2.0},
        {"use_hints": False},
    ],
)
def test_it_offers_nothing_when_the_user_gave_hints(client: Client, given: dict) -> None:
    alice = session_for("alice")
    solved_job(client, alice)
    waiting = job_of(submit_xy(client, alice, **SIZE, **given))
    assert learned_hints_for(waiting) == ()


def test_the_worker_gives_the_second_image_of_a_batch_the_first_ones_answer(
    client: Client, settings: object
) -> None:
    alice = session_for("alice")
    data = submit_batch(client, alice)
    solver = FakeSolver()
    solve_all(solver)
    first, second = Job.objects.filter(user_image__submission_id=data["subid"]).order_by(
        "finished_at"
    )
    (_, first_params), (_, second_params) = solver.calls
    assert first_params.learned_hints == ()
    hint = second_params.learned_hints[0]
    assert hint.source == f"earlier solve of job {first.pk}"
    assert hint.scale_lower < 1.0907 < hint.scale_upper
    assert (hint.center_ra, hint.center_dec) == (pytest.approx(169.966), pytest.approx(13.221))
    # The stored result says where the hint came from.
    assert second.result["hints"]["learned"]["source"] == f"earlier solve of job {first.pk}"
    assert "hints" not in first.result or not first.result["hints"]


def test_the_worker_learns_nothing_when_switched_off(client: Client, settings: object) -> None:
    settings.SKYSOLVE_LEARNED_HINTS = False  # type: ignore[attr-defined]
    alice = session_for("alice")
    solved_job(client, alice)
    submit_xy(client, alice, **SIZE)
    solver = FakeSolver()
    solve_all(solver)
    assert [params.learned_hints for _, params in solver.calls] == [()]


def test_a_request_cannot_bring_its_own_learned_hints(client: Client) -> None:
    forged = [{"source": "me", "scale_lower": 1, "scale_upper": 2, **SIZE}]
    job = job_of(submit_xy(client, session_for("alice"), learned_hints=forged, **SIZE))
    assert "learned_hints" not in job.submission.parameters


# -- the camera must match -------------------------------------------------------

ASI294 = {"INSTRUME": "ZWO ASI294MC Pro", "FOCALLEN": 400.0, "XPIXSZ": 4.63}


def fits_of(cards: dict[str, object], *, width: int = 400, height: int = 300) -> bytes:
    hdu = fits.PrimaryHDU(np.zeros((height, width), dtype=np.uint16))
    for key, value in cards.items():
        hdu.header[key] = value
    out = io.BytesIO()
    hdu.writeto(out)
    return out.getvalue()


def png_of(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height)).save(out, format="PNG")
    return out.getvalue()


def upload(client: Client, session: str, data: bytes, name: str) -> int:
    payload = {"request-json": json.dumps({"session": session})}
    answer = client.post("/api/upload", {**payload, "file": SimpleUploadedFile(name, data)})
    body = json.loads(answer.content)
    assert body["status"] == "success", body
    return int(body["subid"])


def solved_upload(client: Client, session: str, data: bytes, name: str) -> Job:
    job = job_of(upload(client, session, data, name))
    solve_all(FakeSolver())  # answers 400x300, whatever the file
    job.refresh_from_db()
    assert job.status == Job.SUCCESS
    return job


@pytest.mark.parametrize(
    ("cards", "offered"),
    [
        ({**ASI294, "FOCALLEN": 400.4}, True),  # rounding by the capture program
        ({"INSTRUME": "zwo asi294mc pro "}, True),  # only what both have is compared
        ({**ASI294, "TELESCOP": "RedCat 51"}, True),  # the earlier frame said no telescope
        ({**ASI294, "FOCALLEN": 250.0}, False),  # a reducer or another telescope
        ({**ASI294, "XPIXSZ": 9.26}, False),  # binned 2x2
        ({**ASI294, "INSTRUME": "Canon EOS 6D"}, False),
    ],
)
def test_it_offers_an_earlier_solve_only_from_the_same_camera(
    client: Client, cards: dict[str, object], offered: bool
) -> None:
    alice = session_for("alice")
    earlier = solved_upload(client, alice, fits_of(ASI294), "m42-1.fits")
    waiting = job_of(upload(client, alice, fits_of(cards), "next.fits"))
    hints = learned_hints_for(waiting)
    if offered:
        assert [h.source for h in hints] == [f"earlier solve of job {earlier.pk}"]
    else:
        assert hints == ()


def test_it_reads_the_new_images_size_before_the_solve(client: Client) -> None:
    alice = session_for("alice")
    earlier = solved_upload(client, alice, png_of(400, 300), "first.png")
    bigger = job_of(upload(client, alice, png_of(800, 600), "other-camera.png"))
    assert learned_hints_for(bigger) == ()
    fits_elsewhere = job_of(upload(client, alice, fits_of({}, width=401), "crop.fits"))
    assert learned_hints_for(fits_elsewhere) == ()
    same = job_of(upload(client, alice, png_of(400, 300), "second.png"))
    assert [h.source for h in learned_hints_for(same)] == [f"earlier solve of job {earlier.pk}"]


def test_it_reads_the_camera_of_a_tile_compressed_fits_file(client: Client) -> None:
    alice = session_for("alice")
    hdu = fits.CompImageHDU(np.zeros((300, 400), dtype=np.int16))
    hdu.header["FOCALLEN"] = 1000.0
    out = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(out)
    solved_upload(client, alice, fits_of(ASI294), "m42.fits")
    waiting = job_of(upload(client, alice, out.getvalue(), "galaxy.fits.fz"))
    assert learned_hints_for(waiting) == ()  # 1000 mm is not the 400 mm of the earlier frame
    assert learned_hints_for(job_of(upload(client, alice, fits_of(ASI294), "m42-2.fits")))


def test_it_reads_what_it_can_of_a_damaged_fits_header() -> None:
    from skysolve.submissions.learned_hints import _fits_camera

    cards = [
        "SIMPLE  =                    T",
        "NAXIS   =                    2",
        "NAXIS1  =                  400",
        "NAXIS2  = garbage here",
        "FOCALLEN= 'abc",
        "XPIXSZ  = 1.2.3",
        "INSTRUME= 'ZWO ASI294MC'",
        "TELESCOP=                  -12",
        "END",
    ]
    camera = _fits_camera("".join(card.ljust(80) for card in cards).encode())
    assert camera.size is None  # NAXIS2 cannot be read
    assert camera.keywords == {"instrument": "ZWO ASI294MC"}
    assert _fits_camera(b"").keywords == {}
    assert _fits_camera(b"\xff" * 2880).size is None


def test_it_reads_a_camera_as_the_images_own_hints_do() -> None:
    """PIXSIZE is the pixel size for both readers (learned hints once ignored it)."""
    from skysolve.engine.inputs.hints import hints_from_image
    from skysolve.engine.inputs.images import LoadedImage
    from skysolve.submissions.learned_hints import _fits_camera, _same_camera

    def frame(**cards: float) -> fits.Header:
        header = fits.PrimaryHDU(np.zeros((300, 400), dtype=np.int16)).header
        header.update(FOCALLEN=400.0, **cards)
        return header

    pixsize = frame(PIXSIZE=2.4)
    image = LoadedImage(data=np.zeros((300, 400), np.float32), format="fits", header=pixsize)
    assert hints_from_image(image).scale_source == "FOCALLEN and PIXSIZE"
    camera = _fits_camera(pixsize.tostring().encode("ascii"))
    assert camera.keywords == {"focal length": 400.0, "pixel size": 2.4}
    xpixsz = _fits_camera(frame(XPIXSZ=3.76).tostring().encode("ascii"))
    assert not _same_camera(camera.keywords, xpixsz.keywords)
    assert _same_camera(
        camera.keywords, _fits_camera(frame(PIXSIZE1=2.4).tostring().encode()).keywords
    )
