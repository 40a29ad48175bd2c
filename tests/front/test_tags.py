from __future__ import annotations

import pytest
from django.test import Client

from skysolve.community.models import Tag, TaggedUserImage
from skysolve.submissions import services
from tests.front.helpers import make_user, solve, submit

pytestmark = pytest.mark.django_db


def test_it_lists_tags_of_public_images_with_counts(client: Client) -> None:
    alice = make_user("alice")
    solve(submit(alice), objects=["M 101", "M 102"])
    solve(submit(alice), objects=["M 101"])
    solve(submit(alice, public=False), objects=["Secret nebula"])
    response = client.get("/tags")
    listed = [(tag.text, tag.n) for tag in response.context["page"].object_list]
    assert listed == [("M 101", 2), ("M 102", 1)]
    body = response.content.decode()
    m101 = Tag.objects.get(text="M 101")
    assert f'href="/tags/{m101.pk}"' in body
    assert "Secret nebula" not in body


def test_it_searches_tags_by_substring_and_exactly(client: Client) -> None:
    alice = make_user("alice")
    solve(submit(alice), objects=["M 101", "M 1", "NGC 5457"])
    found = client.get("/tags", {"q": "m 1"}).context["page"].object_list
    assert sorted(tag.text for tag in found) == ["M 1", "M 101"]
    exact = client.get("/tags", {"q": "m 1", "exact": "1"}).context["page"].object_list
    assert [tag.text for tag in exact] == ["M 1"]
    assert "No tag matches" in client.get("/tags", {"q": "Andromeda"}).content.decode()


def test_it_pages_the_tag_list(client: Client) -> None:
    alice = make_user("alice")
    solve(submit(alice), objects=[f"object {i:03d}" for i in range(130)])
    first = client.get("/tags", {"order": "name"})
    assert first.context["page"].paginator.num_pages == 2
    assert [t.text for t in first.context["page"].object_list][:2] == ["object 000", "object 001"]
    second = client.get("/tags", {"order": "name", "page": "2"}).context["page"].object_list
    assert [t.text for t in second][0] == "object 100"
    assert "order=name&amp;page=2" in first.content.decode()


def test_it_shows_a_tag_page_with_its_public_images(client: Client) -> None:
    alice = make_user("alice")
    solve(submit(alice, filename="seen.jpg"), objects=["M 42"])
    solve(submit(alice, filename="hidden.jpg", public=False), objects=["M 42"])
    tag = Tag.objects.get(text="M 42")
    response = client.get(f"/tags/{tag.pk}")
    body = response.content.decode()
    assert response.context["count"] == 1
    assert "seen.jpg" in body and "hidden.jpg" not in body
    client.force_login(alice)
    assert "hidden.jpg" in client.get(f"/tags/{tag.pk}").content.decode()


def test_it_hides_a_tag_only_on_private_images(client: Client) -> None:
    alice = make_user("alice")
    solve(submit(alice, public=False), objects=["Secret nebula"])
    tag = Tag.objects.get(text="Secret nebula")
    assert client.get(f"/tags/{tag.pk}").status_code == 404
    client.force_login(make_user("bob"))
    assert client.get(f"/tags/{tag.pk}").status_code == 404


def test_it_lets_a_signed_in_user_tag_an_image_they_see(client: Client) -> None:
    alice = make_user("alice")
    job = solve(submit(alice))
    image = job.user_image
    client.force_login(make_user("bob"))
    response = client.post(f"/user_images/{image.id}/tags", {"text": "  my   favourite "})
    assert response.status_code == 302
    row = TaggedUserImage.objects.get(user_image=image, machine=False)
    assert row.tag.text == "my favourite" and row.added_by is not None
    assert row.added_by.username == "bob"
    body = client.get(f"/results/{job.id}").content.decode()
    assert "my favourite" in body and "by bob" in body
    assert f'href="/tags/{row.tag.pk}"' in body
    # The machine tags stay where the worker put them.
    assert services.tag_texts(image.id)[1] == ["Part of the constellation Ursa Major (UMa)"]


def test_it_refuses_tags_from_people_signed_out_or_on_hidden_images(
    client: Client, settings: object
) -> None:
    alice = make_user("alice")
    image = solve(submit(alice, public=False)).user_image
    response = client.post(f"/user_images/{image.id}/tags", {"text": "spam"})
    assert response.status_code == 302 and "/accounts/login" in response["Location"]
    settings.SKYSOLVE_PRIVATE_RESULTS = "strict"  # type: ignore[attr-defined]
    client.force_login(make_user("bob"))
    assert client.post(f"/user_images/{image.id}/tags", {"text": "spam"}).status_code == 404
    assert not TaggedUserImage.objects.filter(machine=False).exists()


def test_it_lets_the_tagger_or_the_owner_remove_a_tag(client: Client) -> None:
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    image = solve(submit(alice)).user_image
    client.force_login(bob)
    client.post(f"/user_images/{image.id}/tags", {"text": "bob's"})
    client.post(f"/user_images/{image.id}/tags", {"text": "second"})
    first, second = TaggedUserImage.objects.filter(machine=False).order_by("id")
    client.force_login(carol)
    assert client.post(f"/image_tags/{first.pk}/remove").status_code == 403
    client.force_login(bob)
    assert client.post(f"/image_tags/{first.pk}/remove").status_code == 302
    client.force_login(alice)
    assert client.post(f"/image_tags/{second.pk}/remove").status_code == 302
    assert not TaggedUserImage.objects.filter(machine=False).exists()


def test_it_escapes_tag_text(client: Client) -> None:
    alice = make_user("alice")
    job = solve(submit(alice))
    client.force_login(alice)
    client.post(f"/user_images/{job.user_image.id}/tags", {"text": "<script>x()</script>"})
    body = client.get(f"/results/{job.id}").content.decode()
    assert "<script>x()" not in body and "&lt;script&gt;x()" in body
    assert "&lt;script&gt;" in client.get("/tags").content.decode()
