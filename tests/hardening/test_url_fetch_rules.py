"""url_upload's fetch rules, each proved against a local server and its redirects.

The worker fetches; only http/https; every address a host resolves to must be
public unless SKYSOLVE_URL_FETCH_ALLOW covers it; every redirect is checked the
same way; size, time and the number of redirects are capped.  The local server
is on 127.0.0.1, so most tests allow exactly 127.0.0.1/32 and then show that a
redirect can still not lead anywhere else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from skysolve.errors import FetchError
from skysolve.submissions.fetch import MAX_REDIRECTS, fetch_url
from skysolve.submissions.models import Job
from tests.api.helpers import session_for
from tests.hardening.service import run_all
from tests.localhttp import serve_http
from tests.queuefixtures import worker
from tests.webfixtures import FakeSolver

HERE = ["127.0.0.1/32"]
BODY = b"SIMPLE  =                    T" + b" " * 50


class ChainHandler(BaseHTTPRequestHandler):
    """/chain?n=N redirects N times, then serves BODY; /to?url=U redirects to U."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        if parts.path == "/chain":
            left = int(query["n"])
            if left > 0:
                self._redirect(f"/chain?n={left - 1}")
                return
            self._send(BODY)
        elif parts.path == "/to":
            self._redirect(query["url"])
        elif parts.path == "/endless":
            # No Content-Length: only the streaming cap can stop it.
            self.send_response(200)
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"x" * 65536)
            except OSError:
                return
        elif parts.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"x" * 10)
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                return
        elif parts.path == "/silent":
            time.sleep(3)
            self._send(BODY)
        else:
            self._send(BODY)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    with serve_http(ChainHandler) as url:
        yield url


def fetch(url: str, tmp_path: Path, **options: Any) -> str:
    kwargs: dict[str, Any] = {"max_bytes": 1_000_000, "timeout": 5, "allow": HERE}
    kwargs.update(options)
    return fetch_url(url, tmp_path / "out", **kwargs)


def test_it_follows_a_chain_of_redirects_up_to_the_cap(server: str, tmp_path: Path) -> None:
    fetch(f"{server}/chain?n={MAX_REDIRECTS}", tmp_path)
    assert (tmp_path / "out").read_bytes() == BODY


def test_it_stops_a_chain_longer_than_the_cap(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="too many redirects"):
        fetch(f"{server}/chain?n={MAX_REDIRECTS + 1}", tmp_path)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:9/x",  # loopback, but not the allowed address
        "http://10.1.2.3/x",  # private
        "http://172.16.0.1/x",
        "http://192.168.1.1/x",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
        "http://[fe80::1]/x",  # IPv6 link-local
        "http://[::1]/x",  # IPv6 loopback
        "http://[::ffff:10.0.0.1]/x",  # IPv4-mapped private
        "http://0.0.0.0/x",
        "http://100.64.0.1/x",  # carrier-grade NAT
        "http://224.0.0.1/x",  # multicast
    ],
)
def test_it_refuses_a_redirect_to_a_non_public_address(
    server: str, tmp_path: Path, target: str
) -> None:
    with pytest.raises(FetchError, match="not a public address"):
        fetch(f"{server}/to?url={target}", tmp_path)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "target", ["file:///etc/passwd", "ftp://example.org/a", "gopher://127.0.0.1:70/"]
)
def test_it_refuses_a_redirect_to_another_scheme(server: str, tmp_path: Path, target: str) -> None:
    with pytest.raises(FetchError, match="http:// or https://"):
        fetch(f"{server}/to?url={target}", tmp_path)


def test_it_refuses_a_redirect_with_credentials(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="user name or password"):
        fetch(f"{server}/to?url=http://user:pw@127.0.0.1:1/x", tmp_path)


def test_it_refuses_loopback_without_an_allow_list(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="not a public address"):
        fetch(f"{server}/chain?n=0", tmp_path, allow=[])


def test_it_judges_a_host_name_by_the_addresses_it_resolves_to(server: str, tmp_path: Path) -> None:
    by_name = server.replace("127.0.0.1", "localhost")
    with pytest.raises(FetchError, match="localhost: 127.0.0.1 is not a public address"):
        fetch(f"{by_name}/chain?n=0", tmp_path, allow=[])


def test_it_caps_a_body_without_content_length(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="larger than 300000 bytes"):
        fetch(f"{server}/endless", tmp_path, max_bytes=300_000)


def test_it_caps_the_time_of_a_trickling_body(server: str, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match="took too long"):
        fetch(f"{server}/trickle", tmp_path, timeout=1)
    # Not a speed assertion: the body takes 10 s to send, the cap is 1 s.
    assert time.monotonic() - started < 9


def test_it_caps_the_time_of_a_silent_server(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="timed out"):
        fetch(f"{server}/silent", tmp_path, timeout=0.5)


@pytest.mark.django_db
def test_it_fails_the_job_when_a_redirect_leads_to_the_metadata_address(
    client: Client, server: str, settings: Any, fake_solver: FakeSolver
) -> None:
    settings.SKYSOLVE_URL_FETCH_ALLOW = HERE
    session = session_for("mallory")
    target = "http://169.254.169.254/latest/meta-data/iam"
    request = {"session": session, "url": f"{server}/to?url={target}"}
    answer = json.loads(
        client.post("/api/url_upload", {"request-json": json.dumps(request)}).content
    )
    assert answer["status"] == "success", answer
    run_all(worker(fake_solver))
    job = Job.objects.get(user_image__submission_id=answer["subid"])
    assert job.status == Job.FAILURE
    assert "169.254.169.254" in job.error_message
    assert "not a public address" in job.error_message
    assert fake_solver.calls == []
