"""A person in Chromium signs up, uploads apod4.jpg and reads the solution.

The service runs as `skysolve serve` (gunicorn plus its embedded worker) in a
subprocess with its own data directory.  SOLVER picks what the worker runs:
the real engine, or tests/browser/fake_solver.py (same reference numbers)
when SKYSOLVE_BROWSER_SOLVER=fake.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.liveserver import start_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SOLVERS = {
    "real": "skysolve.engine.pipeline.solve",
    "fake": "tests.browser.fake_solver.solve",
}
SOLVER = os.environ.get("SKYSOLVE_BROWSER_SOLVER", "real")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO_ROOT / "test-artifacts"
#: apod4.jpg's reference centre; the engine lands within a few arcminutes.
RA, DEC = 187.185, 56.713
#: Generous waits for a solve to finish: waiting is not what is tested.
SOLVE_WAIT_MS = 240_000


def require_chromium() -> None:
    if CHROMIUM.is_file():
        return
    reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    if os.environ.get("SKYSOLVE_REQUIRE_SERVICES") == "1":
        pytest.fail(reason + "; SKYSOLVE_REQUIRE_SERVICES=1 forbids skipping")
    pytest.skip(reason)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    for live in start_server(tmp_path, SOLVERS[SOLVER], user=None):
        yield live.url


def test_it_signs_up_uploads_and_shows_the_solution(server: str, shared_images: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(server + "/accounts/signup")
            page.fill("#id_username", "alice")
            page.fill("#id_password1", "a long sky password 42")
            page.fill("#id_password2", "a long sky password 42")
            page.click("#signup")
            expect(page.locator("code.api-key")).to_have_count(1)

            page.goto(server + "/upload")
            page.set_input_files("input[name=images]", str(shared_images / "apod4.jpg"))
            page.screenshot(path=str(ARTIFACTS / "upload.png"), full_page=True)
            page.click("#submit")
            expect(page).to_have_url(re.compile(r"/status/[0-9]+$"))

            # The page updates itself: no reload until the results link shows.
            link = page.locator(".results-link a")
            expect(link).to_be_visible(timeout=SOLVE_WAIT_MS)
            expect(page.locator(".job .label")).to_have_text("done: solved")
            expect(page.locator(".stages li.current")).to_have_text("done")
            page.screenshot(path=str(ARTIFACTS / "status.png"), full_page=True)

            link.click()
            expect(page).to_have_url(re.compile(r"/results/[0-9]+$"))
            table = page.locator("#calibration").inner_text()
            ra = float(re.search(r"Centre RA\s+([0-9.]+)°", table).group(1))  # type: ignore[union-attr]
            dec = float(re.search(r"Centre Dec\s+([-+0-9.]+)°", table).group(1))  # type: ignore[union-attr]
            assert abs(ra - RA) < 0.2 and abs(dec - DEC) < 0.2, table
            image = page.locator("#result-image")
            expect(image).to_be_visible()
            page.wait_for_function("document.getElementById('result-image').complete")
            assert image.evaluate("img => img.naturalWidth") > 0
            assert page.locator("svg.skymap polyline.field").count() >= 1
            page.screenshot(path=str(ARTIFACTS / "results.png"), full_page=True)

            # The original beside the overlays, and what people add to an image.
            page.click(".overlay-toggles button:has-text('original')")
            expect(image).to_have_attribute("src", re.compile(r"/user_images/[0-9]+/display$"))
            page.wait_for_function("document.getElementById('result-image').complete")
            assert image.evaluate("img => img.naturalWidth") > 0
            page.fill("#add-tag input[name=text]", "Big Dipper")
            page.click("#add-tag button")
            expect(page.locator("#tags .tags")).to_contain_text("Big Dipper")
            page.fill("#comment-text", "First light with the new lens.")
            page.click(".comment-form button")
            expect(page.locator("#comments")).to_contain_text("First light with the new lens.")
            legacy = page.locator("#sky-viewers a").first
            expect(legacy).to_have_attribute(
                "href", re.compile(r"legacysurvey\.org/viewer/.*poly=")
            )
            page.screenshot(path=str(ARTIFACTS / "results-community.png"), full_page=True)
            page.goto(server + "/tags?q=dipper")
            expect(page.locator(".tags li")).to_have_text(re.compile(r"Big Dipper\s+1"))
            page.click(".tags li a")
            expect(page.locator(".card .name")).to_have_text("apod4.jpg")
            page.screenshot(path=str(ARTIFACTS / "tag.png"), full_page=True)

            page.click("#account-menu summary")
            page.click("#sign-out")  # a POST with its CSRF token
            expect(page.locator("header.top")).to_contain_text("Sign in")
        finally:
            browser.close()
