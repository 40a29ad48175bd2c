"""No user-controlled value reaches a shell or a path outside the data directory.

Path-traversal names (relative, absolute, NUL bytes), shell metacharacters
(each would create a marker file if a shell ever ran it) and HTML go into
every string a client controls: the upload's file name, every request-json
string of upload and url_upload (options, album, unknown keys and key names),
the URL, the web upload form's file names, URL and album, the profile's
display name, search and tag queries, and object names/tags coming back from
a solve.  The jobs then run through the worker (the fake solver, and once the
real engine with a hostile file name).  Afterwards: no marker exists, no file
appeared outside the data directory, uploads are stored under generated
names, values are stored as sent and every page shows them HTML-escaped.
"""

from __future__ import annotations

import dataclasses
import html
import io
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from skysolve.community.models import Album
from skysolve.engine.params import SolveParameters
from skysolve.engine.results import SolveResult
from skysolve.submissions.models import Job, Submission
from tests.api.helpers import session_for, solve_all
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db

#: String fields of request-json (the validated options, album, unknown keys).
REQUEST_JSON_STRINGS = [
    "album", "scale_units", "scale_type", "extractor", "allow_commercial_use",
    "allow_modifications", "publicly_visible", "center_ra", "scale_lower", "parity",
    "comment", "description", "title", "tags",
]  # fmt: skip


def payloads(outside: Path) -> list[str]:
    """Hostile strings; each shell one would create a file in ``outside`` if run."""
    marker = outside / "marker"
    return [
        "../../../outside/traversal.fits",
        "../" * 12 + "tmp/skysolve-traversal.fits",
        str(outside / "absolute.fits"),
        "/etc/passwd",
        "nul\x00byte.fits",
        f"; touch {marker}-semicolon",
        f"$(touch {marker}-dollar).fits",
        f"`touch {marker}-backtick`.jpg",
        f"'; touch {marker}-quote; '",
        f'"; touch {marker}-dquote; "',
        f"x\ntouch {marker}-newline\n.png",
        f"| touch {marker}-pipe",
        "; rm -rf /",
        "<script>alert(1)</script>.jpg",
        '"><img src=x onerror=alert(1)>',
    ]


class HostileObjectsSolver(FakeSolver):
    """The fake solver, naming the hostile strings as the objects in the field."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names

    def __call__(self, source: Any, params: SolveParameters, out_dir: Path, **kw: Any) -> Any:
        result: SolveResult = super().__call__(source, params, out_dir, **kw)
        return dataclasses.replace(
            result, objects_in_field=[n.replace("\x00", "") for n in self.names]
        )


def files_outside(root: Path, data_dir: Path) -> set[Path]:
    return {p for p in root.rglob("*") if not p.is_relative_to(data_dir)}


def multipart(request_json: dict[str, Any], filename: str, data: bytes) -> tuple[bytes, str]:
    body = (
        b"--xYz\r\n"
        b'Content-Disposition: form-data; name="request-json"\r\n\r\n'
        + json.dumps(request_json).encode()
        + b"\r\n--xYz\r\n"
        + b'Content-Disposition: form-data; name="file"; filename="'
        + filename.replace('"', "%22").replace("\n", "%0A").encode()
        + b'"\r\n\r\n'
        + data
        + b"\r\n--xYz--\r\n"
    )
    return body, 'multipart/form-data; boundary="xYz"'


def pages_of(job: Job) -> list[str]:
    submission = job.user_image.submission
    return [f"/status/{submission.id}", f"/results/{job.id}", f"/joblog/{job.id}"]


def assert_escaped(body: str, value: str, where: str) -> None:
    if "<" in value or '"' in value:
        assert value not in body, where  # never raw
    if "<script>" in value:
        assert "<script>alert(1)" not in body, where


def test_it_keeps_every_string_away_from_shells_and_paths(
    tmp_path: Path, data_dir: Path, settings: Any, fake_solver: FakeSolver
) -> None:
    settings.SKYSOLVE_RATE_LIMIT_USER_PER_HOUR = 0
    settings.SKYSOLVE_RATE_LIMIT_IP_PER_HOUR = 0
    outside = tmp_path / "outside"
    outside.mkdir()
    values = payloads(outside)
    before = files_outside(tmp_path, data_dir)
    client = Client()
    session = session_for("alice")
    accepted: list[int] = []

    def api(path: str, **kw: Any) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(client.post(path, **kw).content)
        if answer.get("status") == "success" and "subid" in answer:
            accepted.append(int(answer["subid"]))
        return answer

    for value in values:
        # The file name of an API upload.
        body, ctype = multipart({"session": session, "album": value}, value, b"SIMPLE  = T")
        api("/api/upload", data=body, content_type=ctype)
        # Every request-json string, and as a key name.
        for key in REQUEST_JSON_STRINGS:
            args = {"session": session, "x": [1.0, 2.0], "y": [3.0, 4.0], key: value, value: 1}
            api("/api/url_upload", data={"request-json": json.dumps(args)})
        # The URL (fetched by the worker: loopback, so refused without a connection).
        for url in (f"http://127.0.0.1:9/{value}", f"http://127.0.0.1:9/x?{value}", value):
            api(
                "/api/url_upload",
                data={"request-json": json.dumps({"session": session, "url": url})},
            )
        # Sessions, keys and tag queries.
        assert (
            api("/api/login", data={"request-json": json.dumps({"apikey": value})})["status"]
            == "error"
        )
        assert (
            api("/api/myjobs", data={"request-json": json.dumps({"session": value})})["status"]
            == "error"
        )
        client.get("/api/jobs_by_tag", {"query": value})

    # The web site's forms, signed in.
    web = Client()
    alice = User.objects.get(username="alice")
    web.force_login(alice)
    form = {"scale_preset": "unknown", "scale_units": "degwidth", "scale_type": "ul"}
    form |= {"parity": "2", "tweak_order": "2", "allow_commercial_use": "d"}
    form |= {"allow_modifications": "d", "publicly_visible": "y"}
    for value in values:
        image = io.BytesIO(b"SIMPLE  = T")
        image.name = value
        response = web.post("/upload", {**form, "images": image, "album": value[:200]})
        assert response.status_code in (200, 302)
        web.post("/upload", {**form, "url": f"http://127.0.0.1:9/{value}", "album": value[:200]})
        web.post("/upload", {**form, "url": value, "center_ra": value, "center_dec": value})
        defaults = {"default_allow_commercial_use": "d", "default_allow_modifications": "d"}
        defaults |= {"default_publicly_visible": "y", "display_name": value[:100]}
        web.post("/accounts/profile", defaults)
        for page in ("/search", "/accounts/login"):
            query = {"object": value, "tag": value, "user": value, "ra": value, "next": value}
            response = web.get(page, query)
            assert response.status_code in (200, 302), page
            assert_escaped(response.content.decode(), value, page)

    uploads_made = Submission.objects.filter(source=Submission.SOURCE_UPLOAD).count()
    assert uploads_made >= len(values)  # the API and the form stored them all

    solver = HostileObjectsSolver(values)
    settings.SKYSOLVE_FAKE_SOLVER = solver
    solve_all(solver)
    assert Job.objects.filter(status=Job.SUCCESS).count() > len(values)

    # Nothing ran in a shell and nothing was written outside the data directory.
    assert list(outside.iterdir()) == []
    assert files_outside(tmp_path, data_dir) == before
    assert not Path("/tmp/skysolve-traversal.fits").exists()
    upload_dir = Path(settings.SKYSOLVE_UPLOAD_DIR)
    for path in upload_dir.rglob("*"):
        relative = path.relative_to(upload_dir).as_posix()
        assert re.fullmatch(r"\d{8}(/[0-9a-f]{32}(\.[a-z]+)?)?", relative), relative

    # Stored as sent (file names reduced to their last part), shown escaped.
    names = set(Submission.objects.values_list("original_filename", flat=True))
    plain = [v for v in values if not set(v) & set('"\n\x00') and Path(v).name]
    assert {Path(v).name for v in plain} <= names
    assert set(Album.objects.values_list("title", flat=True)) >= {
        v.strip() for v in values if "\x00" not in v
    } - {""}
    owner = Client()
    owner.force_login(alice)
    for job in Job.objects.filter(status=Job.SUCCESS).select_related("user_image__submission"):
        for page in pages_of(job):
            response = owner.get(page)
            assert response.status_code == 200, page
            raw = b"".join(response) if response.streaming else response.content
            if response["Content-Type"].startswith("text/html"):  # the log is text/plain
                for value in values:
                    assert_escaped(raw.decode(), value, page)
    listings = ["/albums", "/tags", "/my/submissions", "/my/images", "/accounts/profile"]
    listings += [f"/users/{alice.username}"] + [f"/albums/{a.id}" for a in Album.objects.all()]
    for page in listings:
        text = owner.get(page).content.decode()
        for value in values:
            assert_escaped(text, value, page)


@pytest.mark.slow
def test_it_gives_the_real_engine_only_generated_names(
    tmp_path: Path, data_dir: Path, settings: Any, client: Client
) -> None:
    from skysolve.engine.pipeline import solve
    from testfields.synthetic import FieldSpec, make_field, write_fits

    settings.SKYSOLVE_PICTURES = False
    outside = tmp_path / "outside"
    outside.mkdir()
    before = files_outside(tmp_path, data_dir)
    filename = f"$(touch {outside}/dollar) `touch {outside}/tick`; touch {outside}/semi.fits"
    field = make_field(FieldSpec(ra=200.0, dec=-30.0, pixscale=30.0, width=800, height=600, seed=2))
    image = write_fits(field, tmp_path / "field.fits").read_bytes()
    (tmp_path / "field.fits").unlink()
    before = files_outside(tmp_path, data_dir)
    session = session_for("alice")
    args = {"session": session, "scale_units": "arcsecperpix", "scale_lower": 25, "scale_upper": 35,
            "center_ra": 200, "center_dec": -30, "radius": 5, "use_sextractor": True}  # fmt: skip
    body, ctype = multipart(args, filename, image)
    answer = json.loads(client.post("/api/upload", body, content_type=ctype).content)
    assert answer["status"] == "success", answer
    solve_all(solve)
    job = Job.objects.get(user_image__submission_id=answer["subid"])
    assert job.status == Job.SUCCESS, job.log
    assert list(outside.iterdir()) == []
    assert files_outside(tmp_path, data_dir) == before
    # The name reached the engine's log and reproduce command only as data.
    assert "touch" not in job.log or filename in job.log
    page = client.get(f"/results/{job.id}").content.decode()
    shown = re.search(r'<pre class="command" id="command">(.*?)</pre>', page, re.S)
    assert shown is not None
    assert shlex.split(html.unescape(shown.group(1)))[2] == Path(filename).name
