from __future__ import annotations

import pytest
from django.test import Client

from tests.front.helpers import make_user, solve, submit

pytestmark = pytest.mark.django_db


def names(client: Client, query: str) -> list[str]:
    response = client.get(f"/search?{query}")
    assert response.status_code == 200
    return sorted(card.filename for card in response.context["page"].object_list)


@pytest.fixture
def sky(db: None) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    solve(submit(alice, filename="dipper.jpg"), ra=187.185, dec=56.713, objects=["M 101"])
    solve(submit(bob, filename="near-zero-a.jpg"), ra=359.5, dec=10.0, objects=["M 31"])
    solve(submit(bob, filename="near-zero-b.jpg"), ra=0.5, dec=10.0)
    solve(submit(bob, filename="pole.jpg"), ra=10.0, dec=89.5)
    solve(submit(bob, filename="secret.jpg", public=False), ra=187.0, dec=56.5, objects=["M 101"])


def test_it_finds_fields_in_a_cone(client: Client, sky: None) -> None:
    assert names(client, "ra=187&dec=56.5&radius=2") == ["dipper.jpg"]
    assert names(client, "ra=12:28:44&dec=%2B56:42:48&radius=0.5") == ["dipper.jpg"]


def test_it_wraps_around_ra_zero(client: Client, sky: None) -> None:
    assert names(client, "ra=0&dec=10&radius=1") == ["near-zero-a.jpg", "near-zero-b.jpg"]


def test_it_reaches_over_the_pole(client: Client, sky: None) -> None:
    assert names(client, "ra=190&dec=89&radius=2") == ["pole.jpg"]


def test_it_uses_exact_distances_not_the_box(client: Client, sky: None) -> None:
    # (190, 59.5) is inside the bounding box of this cone but 3.4° away.
    assert names(client, "ra=187.185&dec=56.713&radius=1&mode=within") == ["dipper.jpg"]
    assert names(client, "ra=190&dec=59.5&radius=3&mode=within") == []


def test_it_finds_objects_tags_and_users(client: Client, sky: None) -> None:
    assert names(client, "object=m+101") == ["dipper.jpg"]
    assert names(client, "tag=M+31") == ["near-zero-a.jpg"]
    assert names(client, "user=bob") == ["near-zero-a.jpg", "near-zero-b.jpg", "pole.jpg"]
    assert names(client, "user=bob&object=M+31") == ["near-zero-a.jpg"]


def test_it_never_lists_private_images(client: Client, sky: None) -> None:
    client.force_login(make_user("charlie"))
    for query in ("ra=187&dec=56.5&radius=5", "object=M+101", "user=bob", "tag=M+101"):
        assert "secret.jpg" not in client.get(f"/search?{query}").content.decode()


def test_it_explains_bad_coordinates(client: Client) -> None:
    response = client.get("/search?ra=abc&dec=1&radius=1")
    assert "RA must be degrees" in response.content.decode()


def test_it_shows_an_empty_form_first(client: Client) -> None:
    response = client.get("/search")
    assert response.status_code == 200
    assert response.context["searched"] is False


def test_it_finds_fields_that_contain_a_point_or_overlap_a_circle(client: Client, db: None) -> None:
    bob = make_user("bob")
    solve(submit(bob, filename="wide.jpg"), ra=100.0, dec=0.0, radius=10.0)
    solve(submit(bob, filename="narrow.jpg"), ra=106.0, dec=0.0, radius=0.5)
    solve(submit(bob, filename="far.jpg"), ra=140.0, dec=0.0, radius=1.0)
    # (106.2, 0) is 6.2 degrees from the wide field's centre, inside its 10 degrees.
    assert names(client, "ra=106.2&dec=0&mode=contains") == ["narrow.jpg", "wide.jpg"]
    assert names(client, "ra=108&dec=0&mode=contains") == ["wide.jpg"]
    # A 1 degree circle at (110.5, 0): only the wide field reaches it (10.5 <= 1 + 10).
    assert names(client, "ra=110.5&dec=0&radius=1&mode=overlap") == ["wide.jpg"]
    assert names(client, "ra=110.5&dec=0&radius=1&mode=within") == []
    # Overlap is what a position search means unless the form says otherwise.
    assert names(client, "ra=110.5&dec=0&radius=1") == ["wide.jpg"]
    assert names(client, "ra=111.5&dec=0&radius=1&mode=overlap") == []
    assert names(client, "ra=138.5&dec=0&radius=1&mode=overlap") == ["far.jpg"]


def test_it_lists_the_nearest_first_and_at_most_the_limit(db: None) -> None:
    from skysolve.front import search_page as front

    bob = make_user("bob")
    for i in range(12):
        solve(submit(bob, filename=f"f{i:02d}.jpg"), ra=50.0 + 0.3 * i, dec=-20.0, radius=0.2)
    query = front.Query(ra=50.0, dec=-20.0, radius=5.0)
    found = front.search(query, limit=5)
    assert [card.filename for card in found] == [f"f{i:02d}.jpg" for i in range(5)]
    distances = [card.distance or 0.0 for card in found]
    assert distances == sorted(distances)


def test_a_common_tag_is_checked_job_by_job_with_the_same_answer(
    client: Client, sky: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skysolve.front import search_page as front

    monkeypatch.setattr(front, "COMMON_TAG", 0)  # every tag counts as common
    assert names(client, "object=m+101") == ["dipper.jpg"]
    assert names(client, "tag=M+31") == ["near-zero-a.jpg"]
    assert names(client, "user=bob&object=M+31") == ["near-zero-a.jpg"]
    assert names(client, "object=m+101&ra=187&dec=56.5&radius=2") == ["dipper.jpg"]
