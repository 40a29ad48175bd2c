"""The scale migrations on a database that already holds jobs, tags and a queue.

They add columns and indexes to the largest tables; on PostgreSQL the indexes
are built ``CONCURRENTLY`` (the migrations are not atomic) and must come out
valid, and the columns they add are filled from the rows already there.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from skysolve.submissions import sky

BEFORE = [("submissions", "0005_job_submission_last_polled"), ("queue", "0002_workerheartbeat")]
SCALE_INDEXES = (
    "job_status_finished",
    "job_owner_queued",
    "job_owner_status_finished",
    "job_sky",
    "tagged_tag_id",
    "servedowner_fair_order",
    "taggedjob_public",
    "one_job_per_tag",
)


def migrate(targets: list[tuple[str, str]] | None = None) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    return executor


@pytest.mark.django_db(transaction=True)
def test_the_scale_migrations_fill_a_populated_database() -> None:
    old = migrate(BEFORE).loader.project_state(BEFORE).apps
    User = old.get_model("auth", "User")
    Submission = old.get_model("submissions", "Submission")
    UserImage = old.get_model("submissions", "UserImage")
    Job = old.get_model("submissions", "Job")
    Tag = old.get_model("submissions", "Tag")
    Tagged = old.get_model("submissions", "TaggedUserImage")
    alice = User.objects.create(username="alice")
    now = timezone.now()
    spots = [(10.0, 20.0, 0.5), (200.0, -45.0, 3.0), (359.9, 89.9, 20.0)]
    m31 = Tag.objects.create(text="M 31")
    for i in range(60):
        public = "n" if i % 10 == 0 else "y"
        sub = Submission.objects.create(
            id=i + 1, user=alice, source="upload", publicly_visible=public
        )
        image = UserImage.objects.create(
            id=i + 1, submission=sub, user=alice, publicly_visible=public
        )
        ra, dec, radius = spots[i % 3] if i < 50 else (None, None, None)
        Job.objects.create(
            id=i + 1,
            user_image=image,
            owner_key=f"user:{alice.pk}" if i < 55 else f"anon:s{i}",
            status="success" if i < 50 else "queued",
            queued_at=now - timedelta(minutes=i),
            ra=ra,
            dec=dec,
            radius=radius,
        )
        if i < 20:
            Tagged.objects.create(user_image=image, tag=m31, machine=True)
            Tagged.objects.create(user_image=image, tag=m31, machine=False)

    migrate()

    from skysolve.community.models import Tag as NewTag
    from skysolve.queue.models import ServedOwner
    from skysolve.submissions.models import Job as NewJob

    for job in NewJob.objects.filter(ra__isnull=False):
        expected = sky.sky_columns(job.ra, job.dec, job.radius)
        assert (job.sky_pixel, job.sky_size) == (expected["sky_pixel"], expected["sky_size"])
    assert not NewJob.objects.filter(ra__isnull=True, sky_pixel__isnull=False).exists()
    # 20 images tagged twice each, two of them private: 18 public images.
    assert NewTag.objects.get(text="M 31").public_count == 18
    # Each tag row carries its image's visibility (jobs_by_tag reads it).
    from skysolve.community.models import TaggedUserImage as NewTagged

    flags = dict(NewTagged.objects.values_list("user_image_id", "public"))
    assert flags == {i + 1: i % 10 != 0 for i in range(20)}
    # ... and each tagged job is listed once under the tag, with its order.
    from skysolve.community.models import TaggedJob

    listed = set(TaggedJob.objects.values_list("job_id", "public", "queued_at"))
    assert listed == {
        (job.id, job.id % 10 != 1, job.queued_at) for job in NewJob.objects.filter(id__lte=20)
    }
    waiting = ServedOwner.objects.filter(waiting=True)
    assert set(waiting.values_list("owner_key", flat=True)) == {
        f"user:{alice.pk}",
        *(f"anon:s{i}" for i in range(55, 60)),
    }
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname, i.indisvalid FROM pg_index i"
                " JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = ANY(%s)",
                [list(SCALE_INDEXES)],
            )
            assert dict(cursor.fetchall()) == dict.fromkeys(SCALE_INDEXES, True)


def test_the_index_migrations_are_not_atomic() -> None:
    # PostgreSQL refuses CREATE INDEX CONCURRENTLY inside a transaction.
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    for node in [
        ("submissions", "0006_scale_indexes"),
        ("submissions", "0007_tagged_public_tagged_jobs"),
        ("queue", "0003_fair_queue_waiting_owners"),
    ]:
        assert graph.nodes[node].atomic is False
