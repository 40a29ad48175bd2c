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


def test_it_documents_the_id_guessing_refusal_on_every_id_lookup(client: Client) -> None:
    paths = json.loads(client.get("/api/openapi.json").content)["paths"]
    for path, item in paths.items():
        if "{job_id}" in path or "{submission_id}" in path:
            for method, op in item.items():
                assert "429" in op["responses"], (path, method)


def test_it_documents_head_on_result_files(client: Client) -> None:
    paths = json.loads(client.get("/api/openapi.json").content)["paths"]
    assert "head" in paths["/wcs_file/{job_id}"] and "head" in paths["/kml_file/{job_id}"]
    assert "head" not in paths["/api/jobs/{job_id}"]


def test_it_describes_skysolves_additions_to_nova(client: Client) -> None:
    """#17: the fit's quality in the job's info, and what tweak_order does here."""
    paths = json.loads(client.get("/api/openapi.json").content)["paths"]
    assert "adds quality" in paths["/api/jobs/{job_id}/info"]["get"]["summary"]
    assert "tweak_order forces" in paths["/api/upload"]["post"]["summary"]
