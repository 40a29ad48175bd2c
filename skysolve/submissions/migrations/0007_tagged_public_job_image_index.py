"""Tag rows carry their image's visibility; an index of an image's jobs in order.

For ``/api/jobs_by_tag``: a tag's public images become one range of a partial
index of the tag rows, and each image's jobs with their order one range of an
index of the jobs, so the list is read from indexes alone.  Not atomic: the
flags are filled in batches of their own transactions and both indexes are
built ``CONCURRENTLY`` on PostgreSQL (writes go on meanwhile).
"""

from typing import Any

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
        AddIndexConcurrently(
            model_name="taggeduserimage",
            index=models.Index(
                condition=models.Q(("public", True)),
                fields=["tag", "user_image"],
                name="tagged_tag_public",
            ),
        ),
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(fields=["user_image", "queued_at", "id"], name="job_image_queued"),
        ),
    ]
