"""Profiles, API keys and API sessions move here from the submissions app.

State only: the models keep their tables (``submissions_profile``,
``submissions_apikey``, ``submissions_apisession``), so no row moves.
Submissions 0008 removes them from the submissions app's state.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import skysolve.accounts.models


class Migration(migrations.Migration):
    dependencies = [
        ("submissions", "0007_tagged_public_tagged_jobs"),
        ("accounts", "0002_api_lookup_misses"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # Only Django's idea of the models changes: the tables (their names,
        # rows, indexes and constraints) stay exactly as they are.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ApiKey",
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
                            "key",
                            models.CharField(
                                default=skysolve.accounts.models.new_api_key,
                                max_length=64,
                                unique=True,
                            ),
                        ),
                        ("label", models.CharField(blank=True, max_length=100)),
                        ("created", models.DateTimeField(default=django.utils.timezone.now)),
                        ("last_used", models.DateTimeField(blank=True, null=True)),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="api_keys",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "submissions_apikey",
                    },
                ),
                migrations.CreateModel(
                    name="Profile",
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
                        ("display_name", models.CharField(blank=True, max_length=100)),
                        (
                            "default_allow_commercial_use",
                            models.CharField(
                                choices=[("d", "use default"), ("y", "yes"), ("n", "no")],
                                default="d",
                                max_length=2,
                            ),
                        ),
                        (
                            "default_allow_modifications",
                            models.CharField(
                                choices=[
                                    ("d", "use default"),
                                    ("y", "yes"),
                                    ("n", "no"),
                                    ("sa", "yes, share alike"),
                                ],
                                default="d",
                                max_length=2,
                            ),
                        ),
                        (
                            "default_publicly_visible",
                            models.CharField(
                                choices=[("y", "public"), ("n", "private")],
                                default="y",
                                max_length=1,
                            ),
                        ),
                        (
                            "user",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="profile",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "submissions_profile",
                    },
                ),
                migrations.CreateModel(
                    name="ApiSession",
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
                            "key",
                            models.CharField(
                                default=skysolve.accounts.models.new_session_key,
                                max_length=64,
                                unique=True,
                            ),
                        ),
                        ("created", models.DateTimeField(default=django.utils.timezone.now)),
                        ("expires", models.DateTimeField()),
                        (
                            "api_key",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="sessions",
                                to="accounts.apikey",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="api_sessions",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "submissions_apisession",
                        "indexes": [
                            models.Index(fields=["expires"], name="submissions_expires_548822_idx")
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
