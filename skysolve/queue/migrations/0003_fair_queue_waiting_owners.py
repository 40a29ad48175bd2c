"""The fair queue's waiting submitters (skysolve.queue.waiting), marked from the queue."""

from typing import Any

from django.db import migrations, models

from skysolve.submissions.migration_ops import AddIndexConcurrently


def mark_waiting_owners(apps: Any, schema_editor: Any) -> None:
    """Every submitter with queued jobs waits, since its first queued job."""
    from datetime import UTC, datetime

    from django.db.models import Min

    Job = apps.get_model("submissions", "Job")
    ServedOwner = apps.get_model("queue", "ServedOwner")
    firsts = (
        Job.objects.filter(status="queued")
        .values("owner_key")
        .annotate(first=Min("queued_at"))
        .order_by()
    )
    since = {row["owner_key"]: row["first"] for row in firsts}
    for row in ServedOwner.objects.filter(owner_key__in=list(since)):
        row.waiting, row.waiting_since = True, since.pop(row.owner_key)
        row.save(update_fields=["waiting", "waiting_since"])
    never = datetime(1970, 1, 1, tzinfo=UTC)
    ServedOwner.objects.bulk_create(
        [
            ServedOwner(owner_key=key, last_served=never, waiting=True, waiting_since=first)
            for key, first in since.items()
        ],
        batch_size=1000,
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("queue", "0002_workerheartbeat"),
        ("submissions", "0006_scale_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="servedowner",
            name="waiting",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="servedowner",
            name="waiting_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        AddIndexConcurrently(
            model_name="servedowner",
            index=models.Index(
                condition=models.Q(("waiting", True)),
                fields=["last_served", "waiting_since", "owner_key"],
                name="servedowner_fair_order",
            ),
        ),
        migrations.RunPython(mark_waiting_owners, migrations.RunPython.noop, elidable=True),
    ]
