"""Signup.answers (typed JSON, the fields staff add: formdef) and Signup.form_version.

On PostgreSQL, without holding a lock on a live table for longer than a catalogue change:
- answers gets a database default of '{}' besides Django's, so an older process still running during a deploy
  (its INSERT names no answers column) stores a row rather than failing;
- CHECK (jsonb_typeof(answers) = 'object') is added NOT VALID (no scan under the ALTER's lock), then validated
  (a scan that lets signups in meanwhile);
- the admin's filters (answers @> '{"key": value}') get a GIN jsonb_path_ops index, built CONCURRENTLY (hence
  atomic = False). No trigram index for searching answers as text: it costs every signup's INSERT dozens of
  index entries (measured: docs/form.md), so the search box does not look into answers.
SQLite (local mode) gets the columns only.
"""

from django.db import migrations, models

CHECK = "users_signup_answers_object"
INDEXES = {
    "users_signup_answers_gin": 'USING gin ("answers" jsonb_path_ops)',
}


class PostgresSQL(migrations.RunSQL):
    """RunSQL on PostgreSQL only."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def _index(name: str, using: str) -> PostgresSQL:
    # A concurrent build that failed leaves an INVALID index that IF NOT EXISTS would keep: dropped first.
    drop_invalid = (
        f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        f" WHERE c.relname = '{name}' AND NOT i.indisvalid) THEN EXECUTE 'DROP INDEX \"{name}\"'; END IF; END $$"
    )
    return PostgresSQL(
        [drop_invalid, f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "users_signup" {using}'],
        reverse_sql=f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"',
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("users", "0013_signup_topics"),
    ]

    operations = [
        migrations.AddField(
            model_name="signup",
            name="answers",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="signup",
            name="form_version",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        PostgresSQL(
            [
                "ALTER TABLE users_signup ALTER COLUMN answers SET DEFAULT '{}'::jsonb",
                f"ALTER TABLE users_signup ADD CONSTRAINT {CHECK} CHECK (jsonb_typeof(answers) = 'object') NOT VALID",
                f"ALTER TABLE users_signup VALIDATE CONSTRAINT {CHECK}",
            ],
            reverse_sql=[
                f"ALTER TABLE users_signup DROP CONSTRAINT IF EXISTS {CHECK}",
                "ALTER TABLE users_signup ALTER COLUMN answers DROP DEFAULT",
            ],
        ),
        *(_index(name, using) for name, using in INDEXES.items()),
    ]
