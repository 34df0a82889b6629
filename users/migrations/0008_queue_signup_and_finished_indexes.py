"""Two indexes on the queue library's table (django-tasks-db's DBTaskResult), built CONCURRENTLY (the table
keeps taking signups' emails) with SQL: the model is the library's, so they cannot be declared on it, and
its migrations never touch them. PostgreSQL only (SQLite, local mode, goes without).

1. users_tasks_signup_id_idx on the signup id inside the task's arguments (users.tasks.SIGNUP_ID, the same
   expression): erasure, the purge and staff resend find one person's rows without scanning the table.
2. users_tasks_finished_idx on finished_at of finished rows only: the worker's prune (users.tasks.prune)
   reads the oldest finished rows in batches; ready and running rows are not in it.
3. users_tasks_running_idx on started_at of RUNNING rows only (a handful): the worker's claim looks for a
   lease that ran out (a dead worker's row) on every poll.
"""

import importlib

from django.db import migrations

_m0002 = importlib.import_module("users.migrations.0002_search_and_filter_indexes")
CreateIndexSQL = _m0002.CreateIndexSQL

TABLE = "django_tasks_database_dbtaskresult"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("users", "0007_signup_reconfirm_requested_at"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [
        CreateIndexSQL(
            "users_tasks_signup_id_idx",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_tasks_signup_id_idx"
            f" ON {TABLE} (((args_kwargs -> 'kwargs') ->> 'signup_id'))",
            reverse_sql="DROP INDEX CONCURRENTLY IF EXISTS users_tasks_signup_id_idx",
        ),
        CreateIndexSQL(
            "users_tasks_finished_idx",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_tasks_finished_idx"
            f" ON {TABLE} (finished_at) WHERE status IN ('SUCCESSFUL', 'FAILED')",
            reverse_sql="DROP INDEX CONCURRENTLY IF EXISTS users_tasks_finished_idx",
        ),
        CreateIndexSQL(
            "users_tasks_running_idx",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_tasks_running_idx"
            f" ON {TABLE} (started_at) WHERE status = 'RUNNING'",
            reverse_sql="DROP INDEX CONCURRENTLY IF EXISTS users_tasks_running_idx",
        ),
    ]
