from __future__ import annotations

import pytest

from skysolve.accounts.models import ApiKey
from skysolve.cli import main

pytestmark = pytest.mark.django_db


def test_it_prints_only_the_new_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["apikey", "create", "alice"]) == 0
    out = capsys.readouterr().out
    key = ApiKey.objects.get(user__username="alice")
    assert out == key.key + "\n"


def test_it_adds_a_key_to_an_existing_user(capsys: pytest.CaptureFixture[str]) -> None:
    main(["apikey", "create", "bob"])
    main(["apikey", "create", "bob"])
    keys = capsys.readouterr().out.split()
    assert len(set(keys)) == 2
    assert ApiKey.objects.filter(user__username="bob").count() == 2
