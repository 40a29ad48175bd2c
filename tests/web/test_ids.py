from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.auth.models import User

from skysolve.submissions.ids import MAX_ID, MIN_ID, random_id
from skysolve.submissions.models import Submission


def test_it_draws_ids_in_the_32_bit_range() -> None:
    ids = {random_id() for _ in range(2000)}
    assert all(MIN_ID <= i < MAX_ID < 2**31 for i in ids)
    assert len(ids) > 1990  # random, not sequential


@pytest.mark.django_db
def test_it_gives_submissions_random_unique_ids() -> None:
    alice = User.objects.create(username="alice")
    first = Submission.objects.create(user=alice, source="xy")
    second = Submission.objects.create(user=alice, source="xy")
    assert first.id != second.id


@pytest.mark.django_db
def test_it_retries_on_collision() -> None:
    alice = User.objects.create(username="alice")
    with mock.patch("skysolve.submissions.models.random_id", side_effect=[42, 42, 43]):
        first = Submission.objects.create(user=alice, source="xy")
        second = Submission.objects.create(user=alice, source="xy")
    assert (first.id, second.id) == (42, 43)
