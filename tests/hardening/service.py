"""Submitting files through the API and running the real worker step on them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from skysolve.queue.worker import Worker
from skysolve.submissions.models import Job
from tests.localhttp import serve_http


def upload(client: Client, session: str, data: bytes, name: str, **options: Any) -> Any:
    """POST /api/upload; the decoded answer."""
    payload = {"request-json": json.dumps({"session": session, **options})}
    response = client.post("/api/upload", {**payload, "file": SimpleUploadedFile(name, data)})
    return json.loads(response.content)


def upload_ok(client: Client, session: str, data: bytes, name: str, **options: Any) -> int:
    answer = upload(client, session, data, name, **options)
    assert answer["status"] == "success", answer
    return int(answer["subid"])


def submission_status(client: Client, subid: int) -> Any:
    return json.loads(client.get(f"/api/submissions/{subid}").content)


def run_all(w: Worker) -> int:
    """Run jobs until the queue is empty; how many ran."""
    count = 0
    while w.run_once():
        count += 1
    return count


def jobs_of(subid: int) -> list[Job]:
    """The submission's jobs in the order the API lists its images."""
    return list(
        Job.objects.filter(user_image__submission_id=subid)
        .select_related("user_image")
        .order_by("user_image__created", "user_image__id")
    )


@contextmanager
def serving(body: bytes) -> Iterator[str]:
    """A local HTTP server answering every GET with ``body``; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serve_http(Handler) as url:
        yield url
