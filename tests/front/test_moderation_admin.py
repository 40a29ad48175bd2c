from __future__ import annotations

import pytest
from django.test import Client

from skysolve.community.models import Comment, Flag
from tests.front.helpers import make_user, solve, submit

pytestmark = pytest.mark.django_db


def test_it_lets_a_superuser_find_comments_and_flags_in_the_admin(client: Client) -> None:
    alice = make_user("alice")
    image = solve(submit(alice)).user_image
    Comment.objects.create(author=alice, user_image=image, text="buy cheap telescopes")
    Comment.objects.create(author=alice, user_image=image, text="clear skies")
    Flag.objects.create(user_image=image, user=alice, kind=Flag.ABUSE)
    boss = make_user("boss", staff=True)
    boss.is_superuser = True
    boss.save()
    client.force_login(boss)
    found = client.get("/admin/community/comment/", {"q": "cheap"}).content.decode()
    assert "1 result (" in found
    assert found.count('class="action-select"') == 1
    flags = client.get("/admin/community/flag/", {"kind__exact": "abuse"})
    assert flags.status_code == 200 and "report abuse" in flags.content.decode()
