"""Indexes for the staff list at a million rows: trigram search on name/email, filters read in list order.

Built with CREATE INDEX CONCURRENTLY on PostgreSQL, so a live table keeps taking signups meanwhile
(hence atomic = False). A concurrent build that fails (lock_timeout, a cancelled deploy) leaves an
INVALID index behind that IF NOT EXISTS would keep: each build first drops an invalid index of its name,
and skips one a previous run finished. On SQLite (local mode) the B-tree indexes are plain ones and the
trigram indexes, a PostgreSQL feature, are left out.
"""

import django.utils.timezone
from django.contrib.postgres import operations as pg_operations
from django.db import migrations, models
from django.db.migrations.operations import AddIndex, RemoveIndex

# The admin searches with icontains, which PostgreSQL runs as UPPER("col"::text) LIKE UPPER('%term%'):
# the trigram index must be on that very expression to be used.
TRIGRAM_INDEXES = {
    "users_signup_name_trgm": "full_name",
    "users_signup_email_trgm": "email",
}


class OnPostgres:
    """Run the operation's concurrent PostgreSQL form there, and the plain operation (`fallback`) elsewhere."""

    fallback = None

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        elif self.fallback:
            self.fallback.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        elif self.fallback:
            self.fallback.database_backwards(self, app_label, schema_editor, from_state, to_state)


def _drop_if_invalid(schema_editor, name: str) -> bool:
    """Drop index `name` if a failed concurrent build left it INVALID; return whether a valid one exists."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
            [name],
        )
        row = cursor.fetchone()
    if row is not None and not row[0]:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
        return False
    return row is not None


class AddIndexConcurrently(OnPostgres, pg_operations.AddIndexConcurrently):
    fallback = AddIndex

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql" and _drop_if_invalid(schema_editor, self.index.name):
            return  # built by an earlier, interrupted run of this migration
        super().database_forwards(app_label, schema_editor, from_state, to_state)


class RemoveIndexConcurrently(OnPostgres, pg_operations.RemoveIndexConcurrently):
    fallback = RemoveIndex


class CreateIndexSQL(OnPostgres, migrations.RunSQL):
    """CREATE INDEX CONCURRENTLY IF NOT EXISTS `index_name`, after dropping an invalid one of that name."""

    fallback = None

    def __init__(self, index_name: str, *args, **kwargs) -> None:
        self.index_name = index_name
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, args, kwargs = super().deconstruct()
        return name, [self.index_name, *args], kwargs

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            _drop_if_invalid(schema_editor, self.index_name)
        super().database_forwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("users", "0001_initial"),
    ]

    operations = [
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it, RDS included.
        pg_operations.TrigramExtension(),
        *(
            CreateIndexSQL(
                name,
                f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "users_signup" '
                f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)',
                reverse_sql=f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"',
            )
            for name, column in TRIGRAM_INDEXES.items()
        ),
        AddIndexConcurrently(
            model_name="signup",
            index=models.Index(fields=["created_at", "id"], name="users_signup_created_idx"),
        ),
        AddIndexConcurrently(
            model_name="signup",
            index=models.Index(fields=["country", "created_at", "id"], name="users_signup_country_idx"),
        ),
        AddIndexConcurrently(
            model_name="signup",
            index=models.Index(fields=["consent", "created_at", "id"], name="users_signup_consent_idx"),
        ),
        # The new indexes start with these columns, so the old single-column ones are redundant.
        RemoveIndexConcurrently(model_name="signup", name="users_signu_country_5de3ae_idx"),
        RemoveIndexConcurrently(model_name="signup", name="users_signu_consent_a95587_idx"),
        migrations.AlterField(
            model_name="signup",
            name="created_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
    ]
