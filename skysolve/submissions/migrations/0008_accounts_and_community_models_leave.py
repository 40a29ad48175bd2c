"""The accounts' and the community's models leave the submissions app's state.

State only (accounts 0003 and community 0001 took them over with their
tables); then the content types follow them, so permissions and admin log
entries stay attached to the same models.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

MOVED = {
    "accounts": ("profile", "apikey", "apisession"),
    "community": ("album", "tag", "taggeduserimage", "comment", "flag", "taggedjob"),
}


def _relabel(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor, *, back: bool) -> None:
    content_types = apps.get_model("contenttypes", "ContentType").objects.using(
        schema_editor.connection.alias
    )
    for app, models_ in MOVED.items():
        old, new = (app, "submissions") if back else ("submissions", app)
        for model in models_:
            # A content type made for the new label already (by a post_migrate
            # that ran in between) wins; the old one then stays as it was.
            if not content_types.filter(app_label=new, model=model).exists():
                content_types.filter(app_label=old, model=model).update(app_label=new)


def forwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _relabel(apps, schema_editor, back=False)


def backwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _relabel(apps, schema_editor, back=True)


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("accounts", "0003_profile_apikey_apisession"),
        ("community", "0001_initial"),
        ("submissions", "0007_tagged_public_tagged_jobs"),
    ]

    operations = [
        # Only Django's idea of the models changes: the tables (their names,
        # rows, indexes and constraints) stay exactly as they are.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="submission",
                    name="album",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="submissions",
                        to="community.album",
                    ),
                ),
                migrations.RemoveField(
                    model_name="comment",
                    name="album",
                ),
                migrations.RemoveField(
                    model_name="apikey",
                    name="user",
                ),
                migrations.RemoveField(
                    model_name="apisession",
                    name="api_key",
                ),
                migrations.RemoveField(
                    model_name="apisession",
                    name="user",
                ),
                migrations.RemoveField(
                    model_name="comment",
                    name="author",
                ),
                migrations.RemoveField(
                    model_name="comment",
                    name="user_image",
                ),
                migrations.RemoveField(
                    model_name="flag",
                    name="user",
                ),
                migrations.RemoveField(
                    model_name="flag",
                    name="user_image",
                ),
                migrations.RemoveField(
                    model_name="profile",
                    name="user",
                ),
                migrations.RemoveField(
                    model_name="taggeduserimage",
                    name="tag",
                ),
                migrations.RemoveField(
                    model_name="userimage",
                    name="tags",
                ),
                migrations.RemoveField(
                    model_name="taggedjob",
                    name="tag",
                ),
                migrations.RemoveField(
                    model_name="taggedjob",
                    name="job",
                ),
                migrations.RemoveField(
                    model_name="taggeduserimage",
                    name="added_by",
                ),
                migrations.RemoveField(
                    model_name="taggeduserimage",
                    name="user_image",
                ),
                migrations.DeleteModel(
                    name="Album",
                ),
                migrations.DeleteModel(
                    name="ApiKey",
                ),
                migrations.DeleteModel(
                    name="ApiSession",
                ),
                migrations.DeleteModel(
                    name="Comment",
                ),
                migrations.DeleteModel(
                    name="Flag",
                ),
                migrations.DeleteModel(
                    name="Profile",
                ),
                migrations.DeleteModel(
                    name="Tag",
                ),
                migrations.DeleteModel(
                    name="TaggedJob",
                ),
                migrations.DeleteModel(
                    name="TaggedUserImage",
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
