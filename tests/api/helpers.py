"""Small helpers for API tests: log in, submit, and run the queue with the fake solver."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from skysolve.accounts.models import ApiSession
from skysolve.queue.worker import Worker
from skysolve.submissions.models import Submission
from skysolve.submissions.services import create_api_key


def session_for(username: str, *, staff: bool = False) -> str:
    key = create_api_key(username)
    if staff:
        key.user.is_staff = True
        key.user.save()
    return ApiSession.start(key.user, key).key


def call(client: Client, path: str, payload: dict[str, Any] | None = None, **extra: Any) -> Any:
    data = {} if payload is None else {"request-json": json.dumps(payload)}
    response = client.post(path, data, **extra)
    return json.loads(response.content)


def submit_xy(client: Client, session: str, **options: Any) -> int:
    payload = {
        "session": session,
        "x": [10.0, 20.5, 30.0],
        "y": [5.0, 15.0, 25.0],
        "image_width": 100,
        "image_height": 80,
        **options,
    }
    data = call(client, "/api/url_upload", payload)
    assert data["status"] == "success", data
    return int(data["subid"])


def solve_all(solver: Any) -> None:
    worker = Worker(solver=solver, heartbeat_thread=False)
    while worker.run_once():
        pass


def submission(subid: int) -> Submission:
    return Submission.objects.get(pk=subid)
