"""Signup indexes built CONCURRENTLY like migration 0002's (a live table keeps taking signups): confirmed_at
for the landing count, and a small partial index for the staff list's "email: blocked" filter (bounces and
complaints) read in list order (SQLite, local mode, goes without it)."""

import importlib

from django.db import migrations, models

# 0002's operation: CONCURRENTLY on PostgreSQL, after dropping an INVALID index a failed run left behind.
_m0002 = importlib.import_module("users.migrations.0002_search_and_filter_indexes")
CreateIndexSQL, AddIndexConcurrently = _m0002.CreateIndexSQL, _m0002.AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("users", "0004_person_confirm_consent_ledger"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="signup",
            index=models.Index(fields=["confirmed_at"], name="users_signup_confirmed_idx"),
        ),
        CreateIndexSQL(
            "users_signup_blocked_idx",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_signup_blocked_idx"
            " ON users_signup (created_at, id) WHERE email_blocked_at IS NOT NULL",
            reverse_sql="DROP INDEX CONCURRENTLY IF EXISTS users_signup_blocked_idx",
        ),
    ]
