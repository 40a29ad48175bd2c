from __future__ import annotations

import pytest
from django.test import Client

from tests.front.helpers import make_user, solve, submit

pytestmark = pytest.mark.django_db


def test_it_lists_tags_of_public_images_with_counts(client: Client) -> None:
    alice = make_user("alice")
    solve(submit(alice), objects=["M 101", "M 102"])
    solve(submit(alice), objects=["M 101"])
    solve(submit(alice, public=False), objects=["Secret nebula"])
    response = client.get("/tags")
    assert response.context["tags"] == [("M 101", 2), ("M 102", 1)]
    body = response.content.decode()
    assert 'href="/search?tag=M%20101"' in body
    assert "Secret nebula" not in body
