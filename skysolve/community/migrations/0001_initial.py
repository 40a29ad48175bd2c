"""Albums, tags, comments, flags and the tagged-job index move here from submissions.

State only: the models keep their ``submissions_`` tables (and the album
membership table ``submissions_album_user_images``), so no row moves and no
table is locked.  The images' tags are now declared on :class:`Tag`
(``Tag.user_images``, reverse ``tags``) instead of ``UserImage.tags``: the
same through table, no column.  Submissions 0008 removes the models from the
submissions app's state.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("submissions", "0007_tagged_public_tagged_jobs"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # Only Django's idea of the models changes: the tables (their names,
        # rows, indexes and constraints) stay exactly as they are.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Tag",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("text", models.CharField(max_length=200, unique=True)),
                        ("public_count", models.IntegerField(default=0)),
                    ],
                    options={
                        "db_table": "submissions_tag",
                    },
                ),
                migrations.CreateModel(
                    name="Album",
                    fields=[
                        (
                            "id",
                            models.IntegerField(editable=False, primary_key=True, serialize=False),
                        ),
                        ("title", models.CharField(max_length=200)),
                        ("description", models.TextField(blank=True)),
                        (
                            "publicly_visible",
                            models.CharField(
                                choices=[("y", "public"), ("n", "private")],
                                default="y",
                                max_length=1,
                            ),
                        ),
                        ("created", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "owner",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="albums",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "user_images",
                            models.ManyToManyField(
                                blank=True, related_name="albums", to="submissions.userimage"
                            ),
                        ),
                    ],
                    options={
                        "db_table": "submissions_album",
                    },
                ),
                migrations.CreateModel(
                    name="Comment",
                    fields=[
                        (
                            "id",
                            models.IntegerField(editable=False, primary_key=True, serialize=False),
                        ),
                        ("text", models.TextField()),
                        ("created", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "album",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="comments",
                                to="community.album",
                            ),
                        ),
                        (
                            "author",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="comments",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "user_image",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="comments",
                                to="submissions.userimage",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "submissions_comment",
                    },
                ),
                migrations.CreateModel(
                    name="Flag",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("abuse", "report abuse"),
                                    ("nice", "nice solve"),
                                    ("should_have_solved", "should have solved"),
                                    ("good_demo", "good demo"),
                                    ("bug", "report bug"),
                                ],
                                max_length=20,
                            ),
                        ),
                        ("created", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="flags",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "user_image",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="flags",
                                to="submissions.userimage",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "submissions_flag",
                    },
                ),
                migrations.CreateModel(
                    name="TaggedJob",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
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
                                on_delete=django.db.models.deletion.CASCADE, to="community.tag"
                            ),
                        ),
                    ],
                    options={
                        "db_table": "submissions_taggedjob",
                    },
                ),
                migrations.CreateModel(
                    name="TaggedUserImage",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("machine", models.BooleanField(default=False)),
                        ("added", models.DateTimeField(default=django.utils.timezone.now)),
                        ("public", models.BooleanField(default=False)),
                        (
                            "added_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "tag",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE, to="community.tag"
                            ),
                        ),
                        (
                            "user_image",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                to="submissions.userimage",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "submissions_taggeduserimage",
                    },
                ),
                migrations.AddField(
                    model_name="tag",
                    name="user_images",
                    field=models.ManyToManyField(
                        related_name="tags",
                        through="community.TaggedUserImage",
                        to="submissions.userimage",
                    ),
                ),
                migrations.AddIndex(
                    model_name="album",
                    index=models.Index(
                        fields=["publicly_visible", "created", "id"], name="album_visible_created"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="album",
                    constraint=models.UniqueConstraint(
                        fields=("owner", "title"), name="album_title_per_owner"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="comment",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("album__isnull", True), ("user_image__isnull", False)),
                            models.Q(("album__isnull", False), ("user_image__isnull", True)),
                            _connector="OR",
                        ),
                        name="comment_on_one_thing",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="flag",
                    constraint=models.UniqueConstraint(
                        fields=("user_image", "user", "kind"), name="one_flag_per_kind"
                    ),
                ),
                migrations.AddIndex(
                    model_name="taggedjob",
                    index=models.Index(
                        condition=models.Q(("public", True)),
                        fields=["tag", "queued_at", "job"],
                        name="taggedjob_public",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="taggedjob",
                    constraint=models.UniqueConstraint(
                        fields=("tag", "job"), name="one_job_per_tag"
                    ),
                ),
                migrations.AddIndex(
                    model_name="taggeduserimage",
                    index=models.Index(fields=["tag", "id"], name="tagged_tag_id"),
                ),
                migrations.AddConstraint(
                    model_name="taggeduserimage",
                    constraint=models.UniqueConstraint(
                        fields=("user_image", "tag", "machine"), name="one_tag_per_image"
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
