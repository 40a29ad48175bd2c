from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from skysolve.errors import FetchError
from skysolve.submissions.fetch import fetch_url
from tests.localhttp import serve_http


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/image.fits")
            self.end_headers()
            return
        body = b"x" * (5000 if self.path == "/big" else 10)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    with serve_http(Handler) as url:
        yield url


def test_it_refuses_loopback_by_default(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="not a public address"):
        fetch_url(f"{server}/image.fits", tmp_path / "out", max_bytes=100, timeout=5)


def test_it_fetches_from_an_allowed_network(server: str, tmp_path: Path) -> None:
    name = fetch_url(
        f"{server}/redirect", tmp_path / "out", max_bytes=100, timeout=5, allow=["127.0.0.0/8"]
    )
    assert name == "image.fits"
    assert (tmp_path / "out").read_bytes() == b"x" * 10


def test_it_caps_the_size(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="larger than"):
        fetch_url(f"{server}/big", tmp_path / "out", max_bytes=100, timeout=5, allow=["127.0.0.1"])


@pytest.mark.parametrize("url", ["ftp://example.org/a", "file:///etc/passwd", "http://u:p@h/"])
def test_it_refuses_other_urls(url: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError):
        fetch_url(url, tmp_path / "out", max_bytes=100, timeout=5)
