from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from urllib.parse import urlencode

import pytest
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.http.multipartparser import MultiPartParser
from django.test import Client

from skysolve.engine.params import SolveParameters
from skysolve.submissions.models import Job, Submission
from tests.api.helpers import call, session_for

pytestmark = pytest.mark.django_db

FILE_BYTES = b"SIMPLE  =                    T\n\x00\r\n binary \xff tail"


def reference_client_body(payload: Mapping[str, object], data: bytes) -> tuple[bytes, str]:
    """The exact byte shape astrometry.net's client.py builds with the email package."""
    boundary = "===============4716338722459125045=="
    head = (
        f"--{boundary}\n"
        'Content-Type: text/plain; charset="us-ascii"\r\n'
        "MIME-Version: 1.0\r\n"
        'Content-disposition: form-data; name="request-json"\r\n'
        "\r\n"
        f"{json.dumps(payload)}\n"
        f"--{boundary}\n"
        "Content-Type: application/octet-stream\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-disposition: form-data; name="file"; filename="m66.fits"\r\n'
        "\r\n"
    ).encode()
    body = head + data + f"\n--{boundary}--\n".encode()
    return body, f'multipart/form-data; boundary="{boundary}"'


def test_it_accepts_the_reference_clients_hand_built_body(client: Client) -> None:
    session = session_for("alice")
    body, content_type = reference_client_body({"session": session, "scale_lower": 0.5}, FILE_BYTES)
    response = client.post("/api/upload", body, content_type=content_type)
    assert response["Content-Type"] == "text/plain"
    data = json.loads(response.content)
    assert data["status"] == "success"
    assert data["hash"] == hashlib.sha1(FILE_BYTES).hexdigest()
    sub = Submission.objects.get(pk=data["subid"])
    assert sub.original_filename == "m66.fits"
    assert sub.parameters["scale_lower"] == 0.5
    assert sub.file_size == len(FILE_BYTES)
    # The stored name is generated, never the client's.
    assert "m66" not in sub.disk_file


def test_it_accepts_an_ordinary_multipart_upload(client: Client, tmp_path) -> None:
    session = session_for("alice")
    path = tmp_path / "x.jpg"
    path.write_bytes(b"\xff\xd8 jpeg")
    with path.open("rb") as f:
        response = client.post(
            "/api/upload/", {"request-json": json.dumps({"session": session}), "file": f}
        )
    data = json.loads(response.content)
    assert data["status"] == "success"
    assert Submission.objects.get(pk=data["subid"]).disk_file.endswith(".jpg")


@pytest.mark.parametrize("filename", ["..", "photos/"])
def test_it_keeps_a_file_part_whose_name_django_would_drop(client: Client, filename: str) -> None:
    # Why api/multipart.py is ours: Django's MultiPartParser skips a file part
    # whose name sanitizes to nothing, without a word, so the upload would be
    # answered as a request without a file.  A closing-boundary check before
    # Django's parser (which catches a truncated body) cannot see this.
    body, content_type = reference_client_body({"session": session_for("alice")}, FILE_BYTES)
    body = body.replace(b'filename="m66.fits"', f'filename="{filename}"'.encode())
    meta = {"CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body))}
    parser = MultiPartParser(meta, io.BytesIO(body), [MemoryFileUploadHandler()], "utf-8")
    assert not parser.parse()[1]  # Django: no file at all
    data = json.loads(client.post("/api/upload", body, content_type=content_type).content)
    assert data["status"] == "success"
    assert data["hash"] == hashlib.sha1(FILE_BYTES).hexdigest()
    assert Submission.objects.get(pk=data["subid"]).file_size == len(FILE_BYTES)


def test_it_refuses_a_path_in_the_filename(client: Client) -> None:
    session = session_for("alice")
    body, content_type = reference_client_body({"session": session}, FILE_BYTES)
    body = body.replace(b'filename="m66.fits"', b'filename="../../etc/passwd"')
    data = json.loads(client.post("/api/upload", body, content_type=content_type).content)
    sub = Submission.objects.get(pk=data["subid"])
    assert sub.original_filename == "passwd"
    assert ".." not in sub.disk_file


def test_it_needs_a_session(client: Client) -> None:
    body, content_type = reference_client_body({}, FILE_BYTES)
    data = json.loads(client.post("/api/upload", body, content_type=content_type).content)
    assert data == {"status": "error", "errormessage": 'no "session" in JSON.'}


def test_it_reports_an_unknown_session(client: Client) -> None:
    body, content_type = reference_client_body({"session": "abc"}, FILE_BYTES)
    data = json.loads(client.post("/api/upload", body, content_type=content_type).content)
    assert data["errormessage"] == 'no session with key "abc"'


def test_it_reports_a_bad_parameter(client: Client) -> None:
    session = session_for("alice")
    body, content_type = reference_client_body({"session": session, "parity": 7}, FILE_BYTES)
    data = json.loads(client.post("/api/upload", body, content_type=content_type).content)
    assert data["status"] == "error"
    assert "parity" in data["errormessage"]


def test_it_keeps_zero_ra_and_dec(client: Client) -> None:
    session = session_for("alice")
    payload = {"session": session, "center_ra": 0, "center_dec": 0, "radius": 2}
    body, content_type = reference_client_body(payload, FILE_BYTES)
    data = json.loads(client.post("/api/upload", body, content_type=content_type).content)
    params = Submission.objects.get(pk=data["subid"]).parameters
    assert params["center_ra"] == 0.0 and params["center_dec"] == 0.0


def test_a_tweak_order_forces_the_final_fits_order_and_none_leaves_it_to_the_stars(
    client: Client,
) -> None:
    """nova's ``tweak_order`` reaches the engine as asked; without it the final fit
    takes the order the stars support (nova would take 2)."""
    session = session_for("alice")
    orders = []
    for payload in ({"session": session, "tweak_order": 3}, {"session": session}):
        body, content_type = reference_client_body(payload, FILE_BYTES)
        data = json.loads(client.post("/api/upload", body, content_type=content_type).content)
        params = Submission.objects.get(pk=data["subid"]).parameters
        orders.append(SolveParameters.from_mapping(params).tweak_order)
    assert orders == [3, None]


def test_it_needs_a_file(client: Client) -> None:
    session = session_for("alice")
    data = call(client, "/api/upload", {"session": session})
    assert data == {"status": "error", "errormessage": 'no "file" in the upload'}


def test_it_takes_a_star_list_with_no_file_part(client: Client) -> None:
    # client.py --upload-xy: x/y in request-json, url-encoded, no file part.
    session = session_for("alice")
    payload = {"session": session, "x": [10.0, 20.5, 30.0], "y": [5.0, 15.0, 25.0]}
    body = urlencode({"request-json": json.dumps(payload)})
    response = client.post("/api/upload", body, content_type="application/x-www-form-urlencoded")
    data = json.loads(response.content)
    assert data["status"] == "success", data
    sub = Submission.objects.get(pk=data["subid"])
    assert sub.source == Submission.SOURCE_XY
    assert sub.star_list is not None
    assert sub.star_list["x"] == [10.0, 20.5, 30.0]
    # No size given: the field just encloses the stars, as on nova.
    assert (sub.star_list["image_width"], sub.star_list["image_height"]) == (30, 25)
    assert Job.objects.filter(user_image__submission=sub).count() == 1


def test_it_reports_a_bad_star_list_with_no_file_part(client: Client) -> None:
    session = session_for("alice")
    data = call(client, "/api/upload", {"session": session, "x": [1.0, 2.0], "y": [1.0]})
    assert data == {"status": "error", "errormessage": "x, y (and flux) must have the same length"}


def test_it_records_licence_visibility_and_album(client: Client) -> None:
    session = session_for("alice")
    payload = {
        "session": session,
        "allow_commercial_use": "n",
        "allow_modifications": "sa",
        "publicly_visible": "n",
        "album": "Leo",
    }
    body, content_type = reference_client_body(payload, FILE_BYTES)
    data = json.loads(client.post("/api/upload", body, content_type=content_type).content)
    sub = Submission.objects.get(pk=data["subid"])
    assert (sub.allow_commercial_use, sub.allow_modifications) == ("n", "sa")
    assert sub.publicly_visible == "n"
    assert sub.album is not None and sub.album.title == "Leo"
    assert sub.user_images.get().publicly_visible == "n"
