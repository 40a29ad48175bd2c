"""Indexes for nova-sized listings and position search, kept tag counts.

Not atomic: on PostgreSQL every index is built ``CONCURRENTLY`` (writes go on
meanwhile) and the sky columns are filled in batches of their own
transactions, so a table of millions of jobs is never locked for the whole
migration.  Adding the (nullable or constant-default) columns is a change of
the catalogue only on PostgreSQL.
"""

from typing import Any

from django.conf import settings
from django.db import migrations, models

from skysolve.submissions.migration_ops import AddIndexConcurrently

BATCH = 20_000


def fill_sky_columns(apps: Any, schema_editor: Any) -> None:
    """sky_pixel and sky_size of every job with a centre, in batches by id."""
    import numpy as np

    from skysolve.submissions import sky

    Job = apps.get_model("submissions", "Job")
    last = -(2**31)
    while True:
        rows = list(
            Job.objects.filter(id__gt=last, ra__isnull=False, dec__isnull=False)
            .order_by("id")
            .values_list("id", "ra", "dec", "radius")[:BATCH]
        )
        if not rows:
            return
        ids = [row[0] for row in rows]
        pixels = sky.pixels_of(np.array([r[1] for r in rows]), np.array([r[2] for r in rows]))
        sizes = [sky.size_class(r[3] or 0.0) for r in rows]
        with schema_editor.connection.cursor() as cursor:
            if schema_editor.connection.vendor == "postgresql":
                cursor.execute(
                    "UPDATE submissions_job AS j SET sky_pixel = v.p, sky_size = v.s"
                    " FROM unnest(%s::int[], %s::bigint[], %s::smallint[]) AS v(id, p, s)"
                    " WHERE j.id = v.id",
                    [ids, [int(p) for p in pixels], sizes],
                )
            else:
                cursor.executemany(
                    "UPDATE submissions_job SET sky_pixel = %s, sky_size = %s WHERE id = %s",
                    [(int(p), s, i) for i, p, s in zip(ids, pixels, sizes, strict=True)],
                )
        last = ids[-1]


def count_tags(apps: Any, schema_editor: Any) -> None:
    """Tag.public_count from the tag rows (tagcounts.recount_tags, on this migration's models)."""
    from django.db.models import Count, OuterRef, Subquery, Value
    from django.db.models.functions import Coalesce

    Tag = apps.get_model("submissions", "Tag")
    TaggedUserImage = apps.get_model("submissions", "TaggedUserImage")
    counts = (
        TaggedUserImage.objects.filter(
            tag=OuterRef("pk"),
            user_image__publicly_visible="y",
            user_image__submission__publicly_visible="y",
        )
        .order_by()
        .values("tag")
        .annotate(n=Count("user_image", distinct=True))
        .values("n")
    )
    Tag.objects.update(public_count=Coalesce(Subquery(counts), Value(0)))


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("submissions", "0005_job_submission_last_polled"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="sky_pixel",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="job",
            name="sky_size",
            field=models.SmallIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="tag",
            name="public_count",
            field=models.IntegerField(default=0),
        ),
        migrations.RunPython(fill_sky_columns, migrations.RunPython.noop, elidable=True),
        migrations.RunPython(count_tags, migrations.RunPython.noop, elidable=True),
        AddIndexConcurrently(
            model_name="album",
            index=models.Index(
                fields=["publicly_visible", "created", "id"], name="album_visible_created"
            ),
        ),
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(fields=["status", "queued_at"], name="job_status_queued"),
        ),
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(fields=["status", "finished_at", "id"], name="job_status_finished"),
        ),
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(fields=["owner_key", "queued_at", "id"], name="job_owner_queued"),
        ),
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(
                fields=["owner_key", "status", "finished_at"], name="job_owner_status_finished"
            ),
        ),
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(
                condition=models.Q(("sky_pixel__isnull", False)),
                fields=["sky_size", "sky_pixel"],
                name="job_sky",
            ),
        ),
        AddIndexConcurrently(
            model_name="submission",
            index=models.Index(fields=["user", "created", "id"], name="submission_user_created"),
        ),
        AddIndexConcurrently(
            model_name="taggeduserimage",
            index=models.Index(fields=["tag", "id"], name="tagged_tag_id"),
        ),
        AddIndexConcurrently(
            model_name="userimage",
            index=models.Index(fields=["user", "created", "id"], name="userimage_user_created"),
        ),
    ]
