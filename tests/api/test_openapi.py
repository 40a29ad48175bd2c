from __future__ import annotations

import json
import re

from django.test import Client
from django.urls import URLPattern

from skysolve.api.urls import FALLBACK, urlpatterns


def template(pattern: URLPattern) -> str:
    regex = str(pattern.pattern.regex.pattern)
    path = regex.removeprefix("^").removesuffix("$").removesuffix("/?")
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", path).replace("\\.", ".")
    return "/" + path


def test_it_describes_exactly_the_routed_urls(client: Client) -> None:
    spec = json.loads(client.get("/api/openapi.json").content)
    assert spec["openapi"].startswith("3.")
    routed = {template(p) for p in urlpatterns if not str(p.name).startswith(FALLBACK)}
    assert set(spec["paths"]) == routed


def test_it_documents_get_and_post_on_status_urls(client: Client) -> None:
    paths = json.loads(client.get("/api/openapi.json").content)["paths"]
    for name in ("/api/jobs/{job_id}", "/api/submissions/{submission_id}", "/wcs_file/{job_id}"):
        assert {"get", "post"} <= set(paths[name])
