"""Logs shown to people say what happened, never where the server keeps files."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from skysolve.submissions.logs import shown_log
from tests.front.helpers import make_user, solve, submit


def test_it_keeps_only_file_names() -> None:
    text = (
        'Reading file "/srv/sky/jobs/.attempts/7.1.ab12cd34/work/field.axy"...\n'
        "solved by pattern-hash with /root/.local/share/skysolve/fastpath/default.t3db\n"
        "wrote jobs/.attempts/7.1.ab12cd34/wcs.fits; scale 1/2 of http://example.org/a/b.jpg"
    )
    assert shown_log(text) == (
        'Reading file "field.axy"...\n'
        "solved by pattern-hash with default.t3db\n"
        "wrote wcs.fits; scale 1/2 of http://example.org/a/b.jpg"
    )


@pytest.mark.django_db
def test_it_shows_no_data_directory_in_any_log() -> None:
    alice = make_user("alice")
    job = solve(submit(alice))
    data_dir = str(Path(settings.DATA_DIR))
    job.log = f"Reading file {data_dir}/jobs/.attempts/{job.id}.1.ab12cd34/work/field.axy\nok"
    job.save()
    Path(job.result["files"]["log"]).write_text(job.log)
    client = Client()
    client.force_login(alice)
    submission = job.user_image.submission.id
    for url in (f"/status/{submission}", f"/status/{submission}/json", f"/results/{job.id}"):
        body = client.get(url).content.decode()
        assert "field.axy" in body and data_dir not in body and ".attempts" not in body, url
    log = client.get(f"/joblog/{job.id}").content.decode()
    assert log == "Reading file field.axy\nok"
