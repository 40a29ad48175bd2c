from __future__ import annotations

import pytest
from django.test import Client

from skysolve.community.models import Flag
from tests.front.helpers import make_user, solve, submit

pytestmark = pytest.mark.django_db


def test_it_sets_exactly_the_flags_posted(client: Client) -> None:
    job = solve(submit(make_user("alice")))
    image = job.user_image
    bob = make_user("bob")
    client.force_login(bob)
    url = f"/user_images/{image.id}/flags"
    client.post(url, {"flags": ["nice", "good_demo"]})
    assert set(Flag.objects.filter(user=bob).values_list("kind", flat=True)) == {
        "nice",
        "good_demo",
    }
    client.post(url, {"flags": ["abuse"]})
    assert list(Flag.objects.filter(user=bob).values_list("kind", flat=True)) == ["abuse"]
    body = client.get(f"/results/{job.id}").content.decode()
    assert 'value="abuse" checked' in body and 'value="nice" checked' not in body


def test_it_refuses_unknown_flags(client: Client) -> None:
    job = solve(submit(make_user("alice")))
    client.force_login(make_user("bob"))
    response = client.post(
        f"/user_images/{job.user_image.id}/flags",
        {"flags": ["nice", "<b>bogus</b>"], "next": f"/results/{job.id}"},
        follow=True,
    )
    assert "no such flag: &lt;b&gt;bogus&lt;/b&gt;" in response.content.decode()
    assert not Flag.objects.exists()


def test_it_lists_flagged_images_to_staff_only(client: Client) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    public = solve(submit(alice, filename="loud.jpg")).user_image
    private = solve(submit(alice, filename="quiet.jpg", public=False)).user_image
    Flag.objects.create(user_image=public, user=bob, kind=Flag.NICE)
    Flag.objects.create(user_image=private, user=bob, kind=Flag.ABUSE)
    Flag.objects.create(user_image=private, user=alice, kind=Flag.ABUSE)
    client.force_login(bob)
    assert client.get("/flagged").status_code == 404
    assert 'href="/flagged"' not in client.get("/gallery").content.decode()
    client.force_login(make_user("staffer", staff=True))
    assert 'href="/flagged"' in client.get("/gallery").content.decode()
    response = client.get("/flagged")
    body = response.content.decode()
    assert "loud.jpg" in body and "quiet.jpg" in body
    assert "report abuse: 2" in body and "nice solve: 1" in body
    only_abuse = client.get("/flagged", {"kind": "abuse"}).content.decode()
    assert "quiet.jpg" in only_abuse and "loud.jpg" not in only_abuse
