"""The staff list's "email: blocked" filter (bounces and complaints) read in list order from a small partial
index, built CONCURRENTLY on PostgreSQL like migration 0002's (SQLite, local mode, goes without)."""

import importlib

from django.db import migrations

PostgresSQL = importlib.import_module("users.migrations.0002_search_and_filter_indexes").PostgresSQL


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("users", "0004_person_confirm_consent_ledger"),
    ]

    operations = [
        PostgresSQL(
            sql="CREATE INDEX CONCURRENTLY IF NOT EXISTS users_signup_blocked_idx"
            " ON users_signup (created_at, id) WHERE email_blocked_at IS NOT NULL",
            reverse_sql="DROP INDEX CONCURRENTLY IF EXISTS users_signup_blocked_idx",
        ),
    ]
