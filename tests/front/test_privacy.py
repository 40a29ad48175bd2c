"""Every page of a submission as its owner, another user, a visitor and staff.

Public submissions are readable by all.  A private one's pages and original
are its owner's and staff's in both modes, and everyone else gets 404 (not 403,
which would confirm the id exists).  What clients read by job id without a
session (the API's result files such as wcs.fits and the log) answers whoever holds the id
in the default ("open") mode, as on nova, and only the owner and staff in
"strict" mode.  In both modes a private image never shows up in any listing,
search, gallery or "nearby" box.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from PIL import Image as PILImage

from skysolve.community.models import Album, Tag
from skysolve.submissions.models import Job
from skysolve.submissions.services import upload_path
from tests.front.helpers import make_user, solve, submit

pytestmark = pytest.mark.django_db

SECRET = "secret-field.jpg"


def pages(job: Job) -> list[str]:
    """The site's pages of a job (the log they show included) and its original."""
    submission = job.user_image.submission
    image = job.user_image.id
    return [
        f"/status/{submission.id}",
        f"/status/{submission.id}/json",
        f"/results/{job.id}",
        f"/user_images/{image}",
        f"/user_images/{image}/original",
        f"/user_images/{image}/display",
    ]


def client_files(job: Job) -> list[str]:
    """Served by the API app by job id, as nova does (KStars reads them without a session)."""
    return [
        f"/annotated_display/{job.id}",
        f"/grid_display/{job.id}",
        f"/wcs_file/{job.id}",
        f"/joblog/{job.id}",  # KStars fetches the log after the calibration
        f"/api/jobs/{job.id}",
        f"/api/jobs/{job.id}/calibration",
    ]


@pytest.fixture
def people(db: None) -> dict[str, User | None]:
    return {
        "owner": make_user("alice"),
        "other": make_user("bob"),
        "anonymous": None,
        "staff": make_user("charlie", staff=True),
    }


def status_of(client: Client, url: str) -> int:
    response = client.get(url)
    # File responses hold the file open until closed.
    response.close()
    return response.status_code


def client_for(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize("mode", ["open", "strict"])
@pytest.mark.parametrize("public", [True, False])
def test_it_walks_every_page(
    settings: Any, people: dict[str, User | None], mode: str, public: bool
) -> None:
    settings.SKYSOLVE_PRIVATE_RESULTS = mode
    owner = people["owner"]
    job = solve(submit(owner, public=public, filename=SECRET, album="Walk"))
    stored = upload_path(job.user_image.submission)
    assert stored is not None
    PILImage.new("RGB", (40, 30), "navy").save(stored, "PNG")  # so the original renders
    for who, user in people.items():
        client = client_for(user)
        theirs = who in ("owner", "staff")
        for url in pages(job):
            status = status_of(client, url)
            if public or theirs:
                assert status in (200, 302), (who, url, status)
            else:
                assert status == 404, (who, url, status)
        for url in client_files(job):
            status = status_of(client, url)
            if public or mode == "open" or theirs:
                assert status == 200, (who, url, status)
            else:
                assert status == 404, (who, url, status)


@pytest.mark.parametrize("mode", ["open", "strict"])
def test_it_never_lists_a_private_image(
    settings: Any, people: dict[str, User | None], mode: str
) -> None:
    settings.SKYSOLVE_PRIVATE_RESULTS = mode
    owner = people["owner"]
    secret = solve(
        submit(owner, public=False, filename=SECRET, album="Walk"), objects=["Hidden object"]
    )
    neighbour = solve(submit(people["other"], filename="neighbour.jpg"), ra=187.5, dec=56.5)
    listings = [
        "/",
        "/gallery",
        "/tags",
        "/albums",
        f"/albums/{Album.objects.get(title='Walk').id}",  # public album, private image
        "/users/alice",
        "/search?ra=187.185&dec=56.713&radius=10",
        "/search?object=Hidden",
        "/search?tag=Hidden+object",
        "/search?user=alice",
        f"/results/{neighbour.id}",  # its "nearby" box
        "/tags?q=hidden",
        f"/tags/{Tag.objects.get(text='Hidden object').pk}",
        "/users/alice/albums",
    ]
    album = f"/albums/{Album.objects.get(title='Walk').id}"
    for who, user in people.items():
        client = client_for(user)
        for url in listings:
            if (url == album or url.startswith("/tags/")) and who in ("owner", "staff"):
                continue  # an album or tag page shows its owner (and staff) all of its images
            response = client.get(url)
            if response.status_code == 404:
                continue  # the private album itself is hidden from others
            body = response.content.decode()
            assert SECRET not in body, (who, url)
            assert ">Hidden object<" not in body, (who, url)  # as a tag or object link
            assert f"/results/{secret.id}" not in body, (who, url)
    # Only the owner's own lists show it.
    client = client_for(owner)
    assert SECRET in client.get("/my/images").content.decode()
    assert SECRET in client.get("/my/submissions").content.decode()
    other = client_for(people["other"])
    assert SECRET not in other.get("/my/images").content.decode()
