"""The web site as astronomers use it, in Chromium at desktop and phone widths.

One browser and one live Django server (pytest-django's, in this process, on
the test database) serve the whole module; each test builds the submissions
it needs with the same helpers as tests/front, and moves a job through the
worker's two recording steps itself (answer, then pictures), so what the
browser sees at each moment is decided here, not by a solver's timing.

With ``SKYSOLVE_SCREENSHOTS=<dir>`` (``make screenshots``) the walk over every
page also saves a full-page screenshot of each main page at both widths.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import tests.djangosetup  # noqa: F401  (settings first: this package has no Django conftest)
from tests.browser.test_upload_flow import CHROMIUM, CHROMIUM_ARGS, require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]


DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = os.environ.get("SKYSOLVE_SCREENSHOTS", "")
#: apod4.jpg's solve-field reference centre (../shared/images/README.md).
RA, DEC = 187.18503, 56.71337
OBJECTS = [
    "Part of the constellation Ursa Major (UMa)",
    "The star Alioth (ε UMa / 77 UMa)",
    "The star Mizar (ζ UMa / 79 UMa)",
    "NGC 5457",
    "M 101",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread while it runs;
    # the ORM calls made between page actions are ordinary synchronous ones.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                yield launched
            finally:
                launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def open_page(browser: Any, live: Any, user: Any = None, *, phone: bool = False) -> Any:
    """A fresh page (its own cookies), signed in as ``user`` when given."""
    from django.test import Client

    size = PHONE if phone else DESKTOP
    context = browser.new_context(
        viewport=size, is_mobile=phone, has_touch=phone, device_scale_factor=1
    )
    if user is not None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies["sessionid"].value
        context.add_cookies([{"name": "sessionid", "value": cookie, "url": live.url}])
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def picture_bytes(shared: Path | None) -> bytes:
    """A real picture for the result files: apod4.jpg when the shared images are here."""
    import io

    from PIL import Image, ImageDraw

    if shared is not None and (shared / "apod4.jpg").is_file():
        with Image.open(shared / "apod4.jpg") as img:
            picture = img.convert("RGB")
    else:
        picture = Image.new("RGB", (719, 507), "#05070c")
    draw = ImageDraw.Draw(picture)
    draw.ellipse((300, 180, 360, 240), outline="#7fff7f", width=2)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85)
    return out.getvalue()


def images_dir() -> Path | None:
    configured = os.environ.get("SKYSOLVE_TEST_IMAGES")
    path = Path(configured) if configured else Path(__file__).parents[3] / "shared" / "images"
    return path if path.is_dir() else None


def solved(user: Any, *, picture: bytes, public: bool = True, **kwargs: Any) -> Any:
    """A job solved at apod4's field with real pictures and a readable WCS."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from skysolve.submissions.services import upload_path
    from tests.front.helpers import solve, submit

    filename = kwargs.pop("filename", "apod4.jpg")
    submission = submit(user, public=public, filename=filename, **kwargs)
    stored = upload_path(submission)
    assert stored is not None
    stored.write_bytes(picture)
    job = solve(submission, ra=RA, dec=DEC, radius=20.8, objects=OBJECTS)
    files = job.result["files"]
    for key in ("annotated_display", "extraction_display", "grid_display"):
        Path(files[key]).write_bytes(picture)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [RA, DEC]
    wcs.wcs.crpix = [360.0, 254.0]
    wcs.wcs.cd = [[-169.7 / 3600, 0.0], [0.0, -169.7 / 3600]]
    fits.PrimaryHDU(header=wcs.to_header()).writeto(files["wcs"], overwrite=True)
    job.result = {**job.result, "image_width": 719, "image_height": 507, "n_sources": 1000}
    job.save()
    return job


# -- 1. the results page fills itself in --------------------------------------------


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_it_fills_in_the_pictures_of_a_job_solved_a_moment_ago(
    browser: Any, live_server: Any, phone: bool
) -> None:
    from django.utils import timezone
    from playwright.sync_api import expect

    from skysolve.submissions.transitions import PICTURES
    from tests.front.helpers import make_user

    alice = make_user("alice")
    job = solved(alice, picture=picture_bytes(images_dir()))
    complete = dict(job.result)
    # Step one as the worker records it: the answer, no pictures yet.
    job.result = {**complete, "files": {"wcs": complete["files"]["wcs"]}}
    job.stage, job.lease_expires = PICTURES, timezone.now() + timedelta(minutes=5)
    job.save()

    page = open_page(browser, live_server, alice, phone=phone)
    page.goto(f"{live_server.url}/results/{job.id}")
    notice = page.locator("#pictures-pending")
    expect(notice).to_be_visible()
    expect(notice).to_have_attribute("aria-live", "polite")
    # Only the original is there to show so far.
    expect(page.locator(".overlay-toggles button")).to_have_text(["original"])
    page.evaluate("window.notReloaded = true")

    # Step two: the pictures and files are recorded.
    job.result, job.stage, job.lease_expires = complete, "finished", None
    job.save()
    image = page.locator("#result-image")
    expect(image).to_have_attribute("src", f"/annotated_display/{job.id}")
    expect(page.locator(".overlay-toggles button")).to_have_count(4)
    expect(notice).to_have_text("The pictures and files are here.")
    page.wait_for_function("document.getElementById('result-image').complete")
    assert image.evaluate("img => img.naturalWidth") > 0
    expect(page.locator("#result-files")).to_contain_text("solver log")
    assert page.evaluate("window.notReloaded") is True, "the page reloaded"
    page.click(".overlay-toggles button:has-text('grid')")  # the new buttons work
    expect(image).to_have_attribute("src", f"/grid_display/{job.id}")
    page.context.close()


# -- 2. privacy ---------------------------------------------------------------------


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_it_shows_a_private_image_only_to_its_owner(
    browser: Any, live_server: Any, phone: bool
) -> None:
    import requests

    from tests.front.helpers import make_user

    alice = make_user("alice")
    job = solved(alice, picture=picture_bytes(images_dir()), public=False, filename="secret.jpg")
    image, submission = job.user_image, job.user_image.submission
    pages = [
        f"/results/{job.id}",
        f"/status/{submission.id}",
        f"/user_images/{image.id}",
        f"/user_images/{image.id}/original",
    ]
    for url in pages:
        assert requests.get(live_server.url + url, timeout=30).status_code == 404, url
    visitor = open_page(browser, live_server, phone=phone)
    visitor.goto(live_server.url + pages[0])
    assert "secret.jpg" not in visitor.content()
    assert visitor.locator("#not-found").is_visible()  # the site's own 404 page
    owner = open_page(browser, live_server, alice, phone=phone)
    owner.goto(live_server.url + pages[0])
    assert owner.locator("h1").inner_text().startswith("secret.jpg")
    # What KStars and NINA read without a session still answers by job id.
    for url in (
        f"/api/jobs/{job.id}",
        f"/api/jobs/{job.id}/calibration",
        f"/wcs_file/{job.id}",
        f"/annotated_display/{job.id}",
        f"/joblog/{job.id}",
    ):
        assert requests.get(live_server.url + url, timeout=30).status_code == 200, url
    visitor.context.close()
    owner.context.close()


# -- 3 and 5. every page: no server paths, no sideways scrolling on a phone --------------


#: URL patterns that are not pages to look at: posts, files and JSON.
NOT_PAGES = {
    "front:status_json",
    "front:original",
    "front:display",
    "front:thumbnail",
    "front:hide_image",
    "front:unhide_image",
    "front:add_tag",
    "front:remove_tag",
    "front:comment_image",
    "front:set_flags",
    "front:delete_comment",
    "front:comment_album",
    "front:delete_album",
    "accounts:logout",
    "accounts:regenerate_key",
}
#: Pages worth a screenshot for reviewers, by pattern name.
MAIN_PAGES = {
    "front:home",
    "front:upload",
    "front:status",
    "front:results",
    "front:gallery",
    "front:search",
    "front:my_submissions",
    "front:my_images",
    "front:album",
    "front:user",
    "accounts:profile",
}


#: The least height of a control a thumb must hit (CSS px; 44 is the usual advice,
#: a little less is allowed for the borders the browser draws inside it).
MIN_TAP = 40
#: Visible buttons, fields, menus and navigation links shorter than MIN_TAP.
#: Links inside running text are read, not aimed at, and are left out.
SMALL_CONTROLS = f"""
Array.from(document.querySelectorAll(
  'button, input:not([type=hidden]):not([type=checkbox]):not([type=radio]), select, '
  + 'summary, nav a, .overlay-toggles button, .filters a, nav.pages a'
)).filter(e => {{
  const r = e.getBoundingClientRect();
  return r.width > 0 && r.height > 0 && r.height < {MIN_TAP};
}}).map(e => e.outerHTML.slice(0, 80) + ' ' + Math.round(e.getBoundingClientRect().height))
"""


def site_pages(values: dict[str, Any]) -> list[tuple[str, str]]:
    """(pattern name, URL) of every page of the site, from the URL matrix's enumeration."""
    from tests.hardening.test_url_matrix import url_patterns

    pages = []
    for key, route in url_patterns():
        if not key.startswith(("front:", "accounts:")) or key in NOT_PAGES:
            continue
        path = route.removeprefix("^").removesuffix("$").removesuffix("/?")
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values[m.group(1)]), path)
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), path)
        pages.append((key, "/" + path))
    return pages


def test_every_page_fits_a_phone_and_names_no_server_path(browser: Any, live_server: Any) -> None:
    from django.conf import settings
    from django.utils import timezone

    from skysolve.community.models import Album, Comment, Flag, Tag, TaggedUserImage
    from skysolve.submissions.transitions import PICTURES
    from tests.front.helpers import fail, make_user, submit

    picture = picture_bytes(images_dir())
    alice = make_user("alice", staff=True)  # staff too, so the staff pages are walked
    long_name = "Light_M101_2026-04-12T23-41-07_300s_gain120_bin1_very_long_file_name.fits"
    job = solved(alice, picture=picture, filename=long_name, album="Spring galaxies")
    solved(make_user("bob"), picture=picture, filename="bob-dipper.jpg")
    failed = fail(submit(alice, filename="notes.txt"), "the file is not an image")
    data_dir = str(Path(settings.DATA_DIR))
    job.log = f"Reading file {data_dir}/jobs/.attempts/{job.id}.1.ab12cd34/work/field.axy\nsolved"
    job.save()
    image = job.user_image
    TaggedUserImage.objects.create(
        user_image=image, tag=Tag.objects.create(text="first light"), added_by=alice
    )
    Comment.objects.create(author=alice, user_image=image, text="Clear skies, no Moon.")
    Flag.objects.create(user_image=image, user=alice, kind=Flag.NICE)
    album = Album.objects.get(title="Spring galaxies")
    values = {
        "job_id": job.id,
        "submission_id": image.submission.id,
        "image_id": image.id,
        "album_id": album.id,
        "username": "alice",
        "tag_id": Tag.objects.get(text="first light").pk,
        "key_id": 0,
        "tagged_id": 0,
        "comment_id": 0,
    }
    pages = site_pages(values)
    assert len(pages) >= 20, pages
    pages.append(("front:results (failed)", f"/results/{failed.id}"))
    coming = solved(alice, picture=picture, filename="just-solved.jpg")
    coming.result = {**coming.result, "files": {"wcs": coming.result["files"]["wcs"]}}
    coming.stage, coming.lease_expires = PICTURES, timezone.now() + timedelta(hours=1)
    coming.save()
    pages.append(("front:results (pictures coming)", f"/results/{coming.id}"))
    pages.append(("front:search (found)", "/search?object=M101"))
    pages.append(("404", "/no/such/page"))
    shots = Path(SCREENSHOTS) if SCREENSHOTS else None
    if shots is not None:
        shutil.rmtree(shots, ignore_errors=True)
        shots.mkdir(parents=True)

    too_wide: list[tuple[str, str, str, int]] = []
    too_small: list[tuple[str, str, str, str]] = []
    for who, user in (("owner", alice), ("visitor", None)):
        for phone in (True, False):
            page = open_page(browser, live_server, user, phone=phone)
            for key, url in pages:
                response = page.goto(live_server.url + url)
                assert response is not None
                if who == "owner":
                    assert response.status == (404 if key == "404" else 200), (key, url)
                page.wait_for_load_state("load")
                html = page.content()
                assert data_dir not in html and ".attempts" not in html, (key, url)
                if phone:
                    # Against the phone's width itself: a mobile browser widens its
                    # layout viewport (innerWidth) to fit content that overflows.
                    wide = page.evaluate("document.documentElement.scrollWidth")
                    if wide > PHONE["width"]:
                        too_wide.append((who, key, url, wide))
                    if "/admin/" not in page.url:  # Django's own admin sign-in page
                        small = page.evaluate(SMALL_CONTROLS)
                        too_small.extend((who, key, url, what) for what in small)
                name = key.split(" ")[0]
                if shots is not None and (name in MAIN_PAGES or key == "404"):
                    width = "phone" if phone else "desktop"
                    slug = re.sub(r"[^a-z0-9]+", "-", f"{who}-{key}").strip("-")
                    screenshot(page, shots / f"{slug}-{width}.png")
                    if key == "front:results" and who == "owner":
                        zoom_in = page.locator("#sky-plot .zoom-in")
                        for level in range(page.locator("#sky-plot .level").count() - 1):
                            zoom_in.click()
                            page.locator("#sky-plot").screenshot(
                                path=str(shots / f"sky-plot-zoom{level + 1}-{width}.png")
                            )
            page.context.close()
    assert not too_wide, f"pages wider than {PHONE['width']} px on a phone: {too_wide}"
    assert not too_small, f"controls under {MIN_TAP} px tall on a phone: {too_small}"


def screenshot(page: Any, path: Path) -> None:
    """A full-page screenshot with every lazy picture loaded (not only those in view)."""
    page.evaluate(
        "document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')"
    )
    page.wait_for_load_state("networkidle")
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    page.screenshot(path=str(path), full_page=True)


# -- 4. search by name ---------------------------------------------------------------


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_it_finds_a_field_by_any_name_of_what_is_in_it(
    browser: Any, live_server: Any, phone: bool
) -> None:
    from playwright.sync_api import expect

    from tests.front.helpers import make_user

    solved(make_user("alice"), picture=picture_bytes(images_dir()), filename="m101-field.jpg")
    page = open_page(browser, live_server, phone=phone)
    for typed in ("M101", "Messier 101", "Big Dipper"):
        page.goto(f"{live_server.url}/search")
        page.fill("input[name=object]", typed)
        page.click("form.search button[type=submit]")
        expect(page.locator(".card .name")).to_have_text(["m101-field.jpg"])
    page.context.close()


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_it_finds_a_field_that_contains_the_searched_position(
    browser: Any, live_server: Any, phone: bool
) -> None:
    from playwright.sync_api import expect

    from tests.front.helpers import make_user

    # apod4's 33 degree field is centred 13.6 degrees from M 101, which lies inside it.
    solved(make_user("alice"), picture=picture_bytes(images_dir()), filename="wide-dipper.jpg")
    page = open_page(browser, live_server, phone=phone)
    page.goto(f"{live_server.url}/search")
    page.fill("input[name=ra]", "14:03:12.6")
    page.fill("input[name=dec]", "+54:20:56")
    page.fill("input[name=radius]", "1")
    page.click("form.search button[type=submit]")
    expect(page.locator(".card .name")).to_have_text(["wide-dipper.jpg"])
    page.context.close()


# -- 5. a phone at the telescope -----------------------------------------------------


def test_it_uploads_from_a_phone(browser: Any, live_server: Any) -> None:
    from playwright.sync_api import expect

    from tests.front.helpers import make_user

    alice = make_user("alice")
    page = open_page(browser, live_server, alice, phone=True)
    page.goto(f"{live_server.url}/upload")
    page.set_input_files("input[name=images]", files=[
        {"name": "phone.jpg", "mimeType": "image/jpeg", "buffer": picture_bytes(None)}
    ])  # fmt: skip
    page.fill("input[name=center_ra]", "187.2")
    page.fill("input[name=center_dec]", "56.7")
    page.fill("input[name=radius]", "10")
    # Playwright refuses to click what another element covers (the radius
    # field lay over the button): this is the tap a thumb makes.
    page.locator("#submit").tap()
    expect(page).to_have_url(re.compile(r"/status/[0-9]+$"))
    expect(page.locator(".job .label")).to_have_attribute("aria-live", "polite")
    # The account menu opens and holds what the header used to spread over three rows.
    header = page.locator("header.top").bounding_box()
    assert header is not None and header["height"] <= 2 * 48 + 8
    page.locator("#account-menu summary").tap()
    expect(page.locator("#account-menu a:has-text('My submissions')")).to_be_visible()
    page.context.close()


# -- 6. the sky plot and the all-sky map ------------------------------------------------


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_it_zooms_the_sky_plot_to_the_field(browser: Any, live_server: Any, phone: bool) -> None:
    from playwright.sync_api import expect

    from tests.front.helpers import make_user

    alice = make_user("alice")
    job = solved(alice, picture=picture_bytes(images_dir()), album="Dipper")
    page = open_page(browser, live_server, phone=phone)
    page.goto(f"{live_server.url}/results/{job.id}")
    plot = page.locator("#sky-plot")
    expect(plot.locator(".zoom-label")).to_have_text("whole sky")
    assert plot.locator(".level:visible polyline.figure").count() > 50
    while page.locator("#sky-plot .zoom-in").is_enabled():
        page.locator("#sky-plot .zoom-in").click()
    last = plot.locator(".level:visible")
    expect(last).to_have_count(1)
    outline = last.locator("polyline.field").bounding_box()
    view = last.locator("svg").bounding_box()
    assert outline is not None and view is not None
    assert outline["width"] > view["width"] / 3, "the field fills the last view"
    assert last.locator("polyline.figure").count() > 0, "with Ursa Major's lines"
    page.goto(f"{live_server.url}/users/alice")
    link = page.locator("#fields-map a.field-link")
    expect(link).to_have_count(1)
    assert link.get_attribute("href") == f"/results/{job.id}"
    page.context.close()


# -- 7. confirmation and feedback ----------------------------------------------------


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_it_asks_before_what_cannot_be_undone_and_says_what_it_did(
    browser: Any, live_server: Any, phone: bool
) -> None:
    from playwright.sync_api import expect

    from skysolve.accounts.models import ApiKey
    from skysolve.community.models import Comment
    from skysolve.submissions.services import create_api_key
    from tests.front.helpers import make_user

    alice = make_user("alice")
    key = create_api_key("alice").key
    job = solved(alice, picture=picture_bytes(images_dir()))
    Comment.objects.create(author=alice, user_image=job.user_image, text="Delete me later.")
    page = open_page(browser, live_server, alice, phone=phone)
    asked: list[str] = []
    say_yes = [False]

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        if say_yes[0]:
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", answer)
    page.goto(f"{live_server.url}/accounts/profile")
    page.click("#api-keys button.regenerate")
    assert asked and "NINA" in asked[-1]
    assert ApiKey.objects.get(user=alice).key == key  # said no: nothing changed

    page.goto(f"{live_server.url}/results/{job.id}")
    page.click("#comments button:has-text('delete')")
    assert "cannot be brought back" in asked[-1]
    assert Comment.objects.filter(user_image=job.user_image).exists()
    say_yes[0] = True
    page.click("#comments button:has-text('delete')")
    expect(page.locator("#comments")).not_to_contain_text("Delete me later.")

    page.click("#visibility-button")
    expect(page.locator(".messages")).to_contain_text("The image is private now")
    page.check("#flags input[value=nice]")
    page.click("#flags button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Flags saved: nice solve.")
    assert page.url.endswith("#flags")
    page.context.close()
