from __future__ import annotations

from typing import Any

from skysolve.web.checks import check_settings


def ids(settings: Any) -> set[str | None]:
    return {m.id for m in check_settings()}


def test_it_accepts_the_defaults(settings: Any) -> None:
    settings.SECRET_KEY = "x" * 50
    assert ids(settings) == set()


def test_it_rejects_an_unknown_privacy_mode(settings: Any) -> None:
    settings.SKYSOLVE_PRIVATE_RESULTS = "sometimes"
    assert "skysolve.E001" in ids(settings)


def test_it_rejects_a_bad_allow_list(settings: Any) -> None:
    settings.SKYSOLVE_URL_FETCH_ALLOW = ["10.0.0.0/33"]
    assert "skysolve.E004" in ids(settings)


def test_it_rejects_a_non_positive_timeout(settings: Any) -> None:
    settings.SKYSOLVE_JOB_TIMEOUT = 0
    assert "skysolve.E003" in ids(settings)


def test_it_warns_about_a_missing_secret_key(settings: Any) -> None:
    from skysolve.web.settings import INSECURE_SECRET_KEY

    settings.SECRET_KEY = INSECURE_SECRET_KEY
    settings.DEBUG = False
    assert "skysolve.W001" in ids(settings)


def test_it_rejects_bad_index_mirrors(settings: Any) -> None:
    settings.SECRET_KEY = "x" * 50
    settings.SKYSOLVE_INDEX_MIRRORS = "5200=http://10.0.0.1/5200/ 4100=http://10.0.0.1/4100/"
    assert ids(settings) == set()
    settings.SKYSOLVE_INDEX_MIRRORS = "5200:http://10.0.0.1/5200/"
    assert "skysolve.E040" in ids(settings)
