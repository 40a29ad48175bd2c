"""Tag rows carry their image's visibility; TaggedJob lists each tag's jobs in order.

For ``/api/jobs_by_tag``: a tag's public jobs, newest first, become one range
of a partial index of TaggedJob (kept by ``tagcounts``).  Not atomic: the
flags are filled in batches of their own transactions, TaggedJob (a new
table nobody reads yet) in one statement, and its listing index is built
``CONCURRENTLY`` on PostgreSQL.
"""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

from skysolve.submissions.migration_ops import AddIndexConcurrently

BATCH = 50_000


def fill_public(apps: Any, schema_editor: Any) -> None:
    """``public`` of every tag row from its image and submission, in batches by id."""
    from django.db.models import Exists, OuterRef

    TaggedUserImage = apps.get_model("submissions", "TaggedUserImage")
    UserImage = apps.get_model("submissions", "UserImage")
    visible = UserImage.objects.filter(
        pk=OuterRef("user_image_id"), publicly_visible="y", submission__publicly_visible="y"
    )
    last = 0
    while True:
        ids = list(
            TaggedUserImage.objects.filter(id__gt=last)
            .order_by("id")
            .values_list("id", flat=True)[BATCH - 1 : BATCH]
        )
        upto = ids[0] if ids else None
        rows = TaggedUserImage.objects.filter(id__gt=last)
        if upto is not None:
            rows = rows.filter(id__lte=upto)
        rows.update(public=Exists(visible))
        if upto is None:
            return
        last = upto


def fill_tagged_jobs(apps: Any, schema_editor: Any) -> None:
    """A TaggedJob for every job of every tagged image (once per tag), from the tag rows."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO submissions_taggedjob (tag_id, job_id, public, queued_at)"
            " SELECT DISTINCT t.tag_id, j.id, t.public, j.queued_at"
            " FROM submissions_taggeduserimage t"
            " JOIN submissions_job j ON j.user_image_id = t.user_image_id"
        )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("submissions", "0006_scale_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="taggeduserimage",
            name="public",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(fill_public, migrations.RunPython.noop, elidable=True),
        migrations.CreateModel(
            name="TaggedJob",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("public", models.BooleanField(default=False)),
                ("queued_at", models.DateTimeField()),
                (
                    "job",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, to="submissions.job"
                    ),
                ),
                (
                    "tag",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, to="submissions.tag"
                    ),
                ),
            ],
        ),
        migrations.RunPython(fill_tagged_jobs, migrations.RunPython.noop, elidable=True),
        AddIndexConcurrently(
            model_name="taggedjob",
            index=models.Index(
                condition=models.Q(("public", True)),
                fields=["tag", "queued_at", "job"],
                name="taggedjob_public",
            ),
        ),
        # A plain build: the table is new and only this code writes it.
        migrations.AddConstraint(
            model_name="taggedjob",
            constraint=models.UniqueConstraint(fields=["tag", "job"], name="one_job_per_tag"),
        ),
    ]
