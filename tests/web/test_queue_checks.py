"""System checks of the queue settings (celery mode)."""

from __future__ import annotations

from typing import Any

import pytest

from skysolve.web.checks import check_settings


def ids(settings: Any) -> set[str | None]:
    settings.SECRET_KEY = "x" * 50
    return {m.id for m in check_settings()}


@pytest.fixture
def celery(settings: Any) -> Any:
    settings.SKYSOLVE_QUEUE = "celery"
    settings.SKYSOLVE_BROKER_URL = "redis://127.0.0.1:6379/0"
    settings.SKYSOLVE_RESULT_BACKEND = "redis://127.0.0.1:6379/0"
    return settings


def test_it_accepts_celery_with_redis(celery: Any) -> None:
    assert ids(celery) == set()


def test_it_accepts_rabbitmq_with_redis_results(celery: Any) -> None:
    celery.SKYSOLVE_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
    assert ids(celery) == set()


def test_it_rejects_an_unknown_queue(settings: Any) -> None:
    settings.SKYSOLVE_QUEUE = "sqs"
    assert "skysolve.E005" in ids(settings)


def test_it_rejects_an_unknown_broker(celery: Any) -> None:
    celery.SKYSOLVE_BROKER_URL = "sqs://"
    assert "skysolve.E008" in ids(celery)


def test_it_wants_a_redis_result_backend(celery: Any) -> None:
    celery.SKYSOLVE_RESULT_BACKEND = ""
    assert "skysolve.E009" in ids(celery)


def test_it_wants_a_dispatch_slot(celery: Any) -> None:
    celery.SKYSOLVE_DISPATCH_SLOTS = 0
    assert "skysolve.E010" in ids(celery)


def test_it_ignores_celery_settings_in_embedded_mode(settings: Any) -> None:
    settings.SKYSOLVE_BROKER_URL = "sqs://"
    assert ids(settings) == set()
