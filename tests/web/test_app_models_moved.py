"""The accounts' and the community's models left the submissions app: no row moved.

A database of the schema before the move (the old leaf migrations) is filled
through the historical models, then migrated to the current leaves; every
row, foreign key and many-to-many link must come out as it went in, in the
same tables with the same indexes and constraints, and the content types
(what permissions and admin log entries point at) follow the models.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

#: The leaves before the move; ``community`` did not exist.
BEFORE: list[tuple[str, str | None]] = [
    ("submissions", "0007_tagged_public_tagged_jobs"),
    ("accounts", "0002_api_lookup_misses"),
    ("community", None),
]
MOVED_TABLES = (
    "submissions_profile",
    "submissions_apikey",
    "submissions_apisession",
    "submissions_album",
    "submissions_album_user_images",
    "submissions_tag",
    "submissions_taggeduserimage",
    "submissions_taggedjob",
    "submissions_comment",
    "submissions_flag",
)


def migrate(targets: list[tuple[str, str | None]] | None = None) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    return executor


def schema() -> dict[str, Any]:
    """Every table's name, and the moved tables' columns, indexes and constraints."""
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
        moved = {
            table: (
                sorted(
                    c.name for c in connection.introspection.get_table_description(cursor, table)
                ),
                connection.introspection.get_constraints(cursor, table),
            )
            for table in MOVED_TABLES
        }
    return {"tables": tables, "moved": moved}


@pytest.mark.django_db(transaction=True)
def test_it_keeps_every_row_link_and_table() -> None:
    loader = migrate(BEFORE).loader
    moving = {app for app, _ in BEFORE}
    nodes = [node for node in loader.graph.leaf_nodes() if node[0] not in moving]
    nodes += [(app, name) for app, name in BEFORE if name is not None]
    old = loader.project_state(nodes).apps
    before = schema()

    def model(name: str) -> Any:
        return old.get_model("submissions", name)

    User = old.get_model("auth", "User")
    ContentType = old.get_model("contenttypes", "ContentType")
    alice = User.objects.create(username="alice")
    bob = User.objects.create(username="bob")
    now = timezone.now()
    model("Profile").objects.create(user=alice, display_name="Alice", default_publicly_visible="n")
    key = model("ApiKey").objects.create(user=alice, key="abcdefghijklmnop", label="laptop")
    model("ApiSession").objects.create(
        key="s1", user=alice, api_key=key, expires=now + timedelta(days=14)
    )
    model("ApiSession").objects.create(key="anon", user=None, expires=now + timedelta(days=14))
    album = model("Album").objects.create(id=501, owner=alice, title="Nebulae", description="d")
    m31 = model("Tag").objects.create(text="M 31", public_count=3)
    comet = model("Tag").objects.create(text="my comet", public_count=0)
    images = []
    for i in range(1, 5):
        submission = model("Submission").objects.create(
            id=100 + i, user=alice, source="upload", album=album if i < 3 else None
        )
        image = model("UserImage").objects.create(id=200 + i, submission=submission, user=alice)
        job = model("Job").objects.create(
            id=300 + i, user_image=image, owner_key=f"user:{alice.pk}", queued_at=now
        )
        images.append(image)
        tagged = model("TaggedUserImage").objects.create(
            user_image=image, tag=m31, machine=True, public=True
        )
        model("TaggedJob").objects.create(tag=m31, job=job, public=True, queued_at=now)
        assert tagged.pk
    model("TaggedUserImage").objects.create(
        user_image=images[0], tag=comet, machine=False, added_by=bob
    )
    album.user_images.add(images[0], images[1])
    model("Comment").objects.create(id=601, author=bob, user_image=images[0], text="lovely")
    model("Comment").objects.create(id=602, author=alice, album=album, text="mine")
    model("Flag").objects.create(user_image=images[1], user=bob, kind="nice")
    comment_type, _ = ContentType.objects.get_or_create(app_label="submissions", model="comment")
    with connection.cursor() as cursor:
        rows_before = {}
        for table in MOVED_TABLES:
            cursor.execute(f"SELECT * FROM {table} ORDER BY 1, 2")
            rows_before[table] = cursor.fetchall()

    migrate()

    assert schema() == before
    with connection.cursor() as cursor:
        for table in MOVED_TABLES:
            cursor.execute(f"SELECT * FROM {table} ORDER BY 1, 2")
            assert cursor.fetchall() == rows_before[table], table

    from django.contrib.auth.models import User as NewUser
    from django.contrib.contenttypes.models import ContentType as NewContentType

    from skysolve.accounts.models import ApiKey, ApiSession, Profile
    from skysolve.community.models import Album, Comment, Flag, Tag, TaggedJob, TaggedUserImage
    from skysolve.submissions.models import Submission, UserImage

    alice_now = NewUser.objects.get(username="alice")
    assert alice_now.profile.display_name == "Alice"  # type: ignore[attr-defined]
    assert alice_now.profile.default_publicly_visible == "n"  # type: ignore[attr-defined]
    api_key = ApiKey.objects.get(user=alice_now)
    assert (api_key.key, api_key.label) == ("abcdefghijklmnop", "laptop")
    assert ApiSession.objects.get(key="s1").api_key == api_key
    assert ApiSession.objects.get(key="anon").user is None
    assert Profile.objects.count() == 1
    nebulae = Album.objects.get(pk=501)
    assert nebulae.owner == alice_now
    assert sorted(nebulae.user_images.values_list("id", flat=True)) == [201, 202]
    assert sorted(Submission.objects.filter(album=nebulae).values_list("id", flat=True)) == [
        101,
        102,
    ]
    assert Submission.objects.get(pk=101).album == nebulae
    assert Submission.objects.get(pk=104).album is None
    assert list(Album.objects.filter(user_images=202)) == [nebulae]
    tag = Tag.objects.get(text="M 31")
    assert tag.public_count == 3
    assert sorted(tag.user_images.values_list("id", flat=True)) == [201, 202, 203, 204]
    first = UserImage.objects.get(pk=201)
    assert sorted(Tag.objects.filter(user_images=first).values_list("text", flat=True)) == [
        "M 31",
        "my comet",
    ]
    people = TaggedUserImage.objects.get(machine=False)
    assert (people.user_image_id, people.added_by.username) == (201, "bob")  # type: ignore[attr-defined,union-attr]
    assert sorted(TaggedJob.objects.filter(tag=tag).values_list("job_id", flat=True)) == [
        301,
        302,
        303,
        304,
    ]
    on_image, on_album = Comment.objects.order_by("id")
    assert (on_image.user_image, on_image.album, on_image.author.username) == (first, None, "bob")
    assert (on_album.user_image, on_album.album) == (None, nebulae)
    flag = Flag.objects.get()
    assert (flag.user_image_id, flag.kind) == (202, "nice")  # type: ignore[attr-defined]
    # Permissions and admin log entries keep pointing at the model, now in its app.
    moved = NewContentType.objects.get(pk=comment_type.pk)
    assert (moved.app_label, moved.model) == ("community", "comment")
    assert NewContentType.objects.get_for_model(Comment).pk == comment_type.pk
    # New rows go into the same tables (ids, sequences and signals work).
    Comment.objects.create(author=alice_now, album=nebulae, text="another")
    assert ApiKey.objects.create(user=alice_now).pk > api_key.pk
    TaggedUserImage.objects.create(
        user_image=UserImage.objects.get(pk=204), tag=Tag.objects.get(text="my comet")
    )
    assert TaggedJob.objects.filter(tag__text="my comet", job_id=304).exists()
