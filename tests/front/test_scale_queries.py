"""Every listing page and API list runs a fixed number of queries, however many rows.

Each test measures a page with a few rows, adds many more (more than a page),
and measures again: both counts must equal the pinned number.  A query per
row (a card's job, a tag's image) would make the second count grow.  The
suite runs on SQLite and, through ``make unit-postgres``, on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from skysolve.community import tagcounts
from skysolve.community.models import Album, Comment, Tag, TaggedUserImage
from skysolve.submissions.models import Job, UserImage
from tests.front.helpers import make_user, solve, submit
from tests.jobs import job_of

pytestmark = pytest.mark.django_db

#: Rows added between the two measurements: more than a page (24) holds.
MORE = 30


def count(request: Callable[[], object]) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = request()
    assert getattr(response, "status_code", 200) == 200
    return len(queries.captured_queries)


def grow(owner: User, n: int, *, ra: float = 150.0, album: str = "") -> list[Job]:
    """``n`` solved images of ``owner`` near (ra, 20), and a few queued ones among them."""
    jobs = []
    for i in range(n):
        if i % 5 == 4:
            submit(owner, filename=f"q{i}.jpg", album=album)  # queued: no result yet
        job = solve(
            submit(owner, filename=f"f{i}.jpg", album=album),
            ra=ra + 0.01 * i,
            dec=20.0,
            radius=0.5,
            objects=["Whirlpool Galaxy", f"NGC {i}"],
        )
        jobs.append(job)
    return jobs


def assert_constant(request: Callable[[], object], add: Callable[[], object], pinned: int) -> None:
    before = count(request)
    add()
    after = count(request)
    assert (before, after) == (pinned, pinned)


@pytest.fixture
def alice(db: None) -> User:
    user = make_user("alice")
    grow(user, 2, album="trip")
    return user


@pytest.mark.parametrize(
    ("url", "pinned"),
    [
        ("/gallery", 1),
        ("/gallery?page=2", 1),
        ("/users/alice", 3),
        ("/tags", 2),
        ("/search?ra=150&dec=20&radius=2", 8),
        ("/search?ra=150.1&dec=20&radius=1&mode=overlap", 8),
        ("/search?ra=150.1&dec=20&mode=contains", 8),
        ("/search?object=Whirlpool", 3),
        ("/albums", 1),
    ],
)
def test_public_listings(client: Client, alice: User, url: str, pinned: int) -> None:
    assert_constant(lambda: client.get(url), lambda: grow(alice, MORE, album="trip"), pinned)


def test_a_deep_page(client: Client, alice: User) -> None:
    grow(alice, MORE)
    older = client.get("/gallery").context["page"].older_query
    assert_constant(lambda: client.get(f"/gallery?{older}"), lambda: grow(alice, MORE), 2)


def test_a_tag_page(client: Client, alice: User) -> None:
    tag = Tag.objects.get(text="Whirlpool Galaxy")
    assert_constant(lambda: client.get(f"/tags/{tag.pk}"), lambda: grow(alice, MORE), 4)


def test_an_album(client: Client, alice: User) -> None:
    album = Album.objects.get(title="trip")
    url = f"/albums/{album.id}"
    assert_constant(lambda: client.get(url), lambda: grow(alice, MORE, album="trip"), 5)


@pytest.mark.parametrize(
    ("url", "pinned"),
    [
        ("/my/images", 5),
        ("/my/images?status=solved", 5),
        ("/my/submissions", 5),
        ("/my/submissions?status=solved", 5),
    ],
)
def test_own_listings(client: Client, alice: User, url: str, pinned: int) -> None:
    client.force_login(alice)
    assert_constant(lambda: client.get(url), lambda: grow(alice, MORE), pinned)


def test_the_api_lists(client: Client, alice: User) -> None:
    from skysolve.submissions.services import create_api_key

    key = create_api_key("alice").key
    answer = client.post("/api/login", {"request-json": json.dumps({"apikey": key})})
    session = json.loads(answer.content)["session"]

    def myjobs() -> object:
        body = {"request-json": json.dumps({"session": session})}
        return client.post("/api/myjobs", body)

    assert_constant(myjobs, lambda: grow(alice, MORE), 2)
    mine = Job.objects.filter(user_image__submission__user=alice).count()
    assert len(json.loads(myjobs().content)["jobs"]) == mine > MORE  # type: ignore[attr-defined]
    by_tag = "/api/jobs_by_tag?query=Whirlpool"
    assert_constant(lambda: client.get(by_tag), lambda: grow(alice, MORE), 2)
    assert len(json.loads(client.get(by_tag).content)["job_ids"]) == 2 + 2 * MORE


def test_the_api_lists_are_what_json_dumps_writes(client: Client, alice: User) -> None:
    """The database writes the long lists as text: the bytes are those of json.dumps."""
    from skysolve.submissions.services import create_api_key, retry_job

    grow(alice, 12)
    hidden = submit(alice, public=False, filename="private.jpg")
    solve(hidden, objects=["Whirlpool Galaxy"])
    # Jobs queued at the same instant: the id breaks the tie, newest first.
    tied = [submit(alice, filename=f"t{i}.jpg") for i in range(8)]
    Job.objects.filter(user_image__submission__in=tied).update(queued_at=timezone.now())
    for submission in tied:
        solve(submission, objects=["Whirlpool Galaxy"])
    # A retried job is queued anew: it moves to the front of the lists.
    retried = grow(alice, 1)[0]
    Job.objects.filter(pk=retried.pk).update(status=Job.FAILURE)
    assert retry_job(retried.id)
    key = create_api_key("alice").key
    answer = client.post("/api/login", {"request-json": json.dumps({"apikey": key})})
    session = json.loads(answer.content)["session"]
    mine = client.post("/api/myjobs", {"request-json": json.dumps({"session": session})})
    ids = list(
        Job.objects.filter(user_image__user=alice)
        .order_by("-queued_at", "-id")
        .values_list("id", flat=True)
    )
    assert len(ids) > 20 and ids[0] == retried.id
    assert mine.content.decode() == json.dumps({"status": "success", "jobs": ids})
    tagged = Job.objects.filter(
        user_image__taggeduserimage__tag__text="Whirlpool Galaxy",
        user_image__publicly_visible="y",
        user_image__submission__publicly_visible="y",
    ).order_by("-queued_at", "-id")
    expected = {"job_ids": list(tagged.values_list("id", flat=True).distinct())}
    assert len(expected["job_ids"]) > 20 and job_of(hidden).id not in expected["job_ids"]
    assert expected["job_ids"][0] == retried.id
    by_tag = client.get("/api/jobs_by_tag?query=whirlpool galaxy&exact=yes")
    assert by_tag.content.decode() == json.dumps(expected)
    assert client.get("/api/jobs_by_tag?query=nothing").content == b'{"job_ids": []}'
    # Two tags match the search and one image has both: its job is listed once.
    from skysolve.community import tags
    from skysolve.submissions.services import Viewer

    tags.add_tag(retried.user_image.pk, Viewer(user=alice), "Whirlpool")
    both = client.get("/api/jobs_by_tag?query=whirlpool")
    assert both.content.decode() == json.dumps(expected)


def test_an_image_with_many_tags_and_comments(client: Client, alice: User) -> None:
    bob = make_user("bob")
    job = grow(alice, 1)[0]
    image = job.user_image

    def pile_up() -> None:
        for i in range(250):
            tag = Tag.objects.create(text=f"tag {i}")
            TaggedUserImage.objects.create(user_image=image, tag=tag, added_by=bob)
            Comment.objects.create(author=bob, user_image=image, text=f"comment {i}")

    client.force_login(bob)
    before = count(lambda: client.get(f"/results/{job.id}"))
    pile_up()
    response = client.get(f"/results/{job.id}")
    assert count(lambda: client.get(f"/results/{job.id}")) == before
    # The page shows a bounded number of them.
    assert len(response.context["comments"]) == 100
    assert len(response.context["image_tags"]) == 100


def test_tag_counts_follow_tags_and_visibility(client: Client, alice: User) -> None:
    from skysolve.community import edits, tags
    from skysolve.submissions.services import Viewer

    whirlpool = Tag.objects.get(text="Whirlpool Galaxy")
    assert whirlpool.public_count == 2
    image = UserImage.objects.filter(user=alice).first()
    assert image is not None
    viewer = Viewer(user=alice)
    tags.add_tag(image.id, viewer, "Whirlpool Galaxy")  # the same tag again: one image
    whirlpool.refresh_from_db()
    assert whirlpool.public_count == 2
    # The tag rows carry the visibility jobs_by_tag reads.
    rows = TaggedUserImage.objects.filter(user_image=image)
    assert rows.count() > 1 and all(rows.values_list("public", flat=True))
    by_tag = "/api/jobs_by_tag?query=Whirlpool"
    assert len(json.loads(client.get(by_tag).content)["job_ids"]) == 2
    edits.set_visibility(image.id, viewer, public=False)
    whirlpool.refresh_from_db()
    assert whirlpool.public_count == 1
    assert not any(rows.values_list("public", flat=True))
    hidden = set(image.jobs.values_list("id", flat=True))
    assert not hidden & set(json.loads(client.get(by_tag).content)["job_ids"])
    tags.add_tag(image.id, viewer, "Spiral")  # a new tag on a private image
    assert TaggedUserImage.objects.get(user_image=image, tag__text="Spiral").public is False
    assert json.loads(client.get("/api/jobs_by_tag?query=Spiral").content) == {"job_ids": []}
    edits.set_visibility(image.id, viewer, public=True)
    assert all(rows.values_list("public", flat=True))
    assert json.loads(client.get("/api/jobs_by_tag?query=Spiral").content) == {
        "job_ids": sorted(hidden, reverse=True)
    }
    spiral = TaggedUserImage.objects.get(user_image=image, tag__text="Spiral")
    tags.remove_tag(spiral.pk, viewer)
    assert json.loads(client.get("/api/jobs_by_tag?query=Spiral").content) == {"job_ids": []}
    image.delete()
    whirlpool.refresh_from_db()
    assert whirlpool.public_count == 1
    Tag.objects.update(public_count=0)
    tagcounts.recount_tags()
    whirlpool.refresh_from_db()
    assert whirlpool.public_count == 1
