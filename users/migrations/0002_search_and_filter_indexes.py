"""Indexes for the staff list at a million rows: trigram search on name/email, filters read in list order.

Built with CREATE INDEX CONCURRENTLY on PostgreSQL, so a live table keeps taking signups meanwhile
(hence atomic = False). On SQLite (local mode) the B-tree indexes are plain ones and the trigram
indexes, a PostgreSQL feature, are left out.
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


class AddIndexConcurrently(OnPostgres, pg_operations.AddIndexConcurrently):
    fallback = AddIndex


class RemoveIndexConcurrently(OnPostgres, pg_operations.RemoveIndexConcurrently):
    fallback = RemoveIndex


class PostgresSQL(OnPostgres, migrations.RunSQL):
    fallback = None


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("users", "0001_initial"),
    ]

    operations = [
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it, RDS included.
        pg_operations.TrigramExtension(),
        *(
            PostgresSQL(
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
