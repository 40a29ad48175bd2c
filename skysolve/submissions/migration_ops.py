"""Migration operations for large tables: index builds that do not lock writes.

``CREATE INDEX`` locks a table against writes for the whole build, minutes
on a table of millions of jobs.  On PostgreSQL :class:`AddIndexConcurrently`
builds with ``CONCURRENTLY`` instead (the service keeps taking submissions and
recording results meanwhile); other databases build it as usual.  A migration
using it must be ``atomic = False``: PostgreSQL cannot build concurrently
inside a transaction.  A build that failed halfway leaves an invalid index of
the same name, which is dropped first so that running the migration again
finishes it.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


class AddIndexConcurrently(migrations.AddIndex):
    """AddIndex, built ``CONCURRENTLY`` on PostgreSQL (the migration must not be atomic)."""

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor != "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        if schema_editor.connection.in_atomic_block:
            raise ValueError("AddIndexConcurrently needs a migration with atomic = False")
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {self.index.name}")
        schema_editor.add_index(model, self.index, concurrently=True)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor != "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
            return
        schema_editor.remove_index(model, self.index, concurrently=True)

    def describe(self) -> str:
        return f"{super().describe()} (concurrently on PostgreSQL)"
