"""`manage.py setup_db_roles`: create or update the app's database role, with DML on the app's tables only.

Run by the database owner (the migration task, right after `migrate`); idempotent. The role
(DATABASE_APP_ROLE, default signup_app) may log in, read and write the rows of every table in the schema
(now and, by default privileges, every table later migrations create; django_migrations read-only) and
use their sequences; it owns nothing, so it cannot create, alter, drop or truncate. statement_timeout and
lock_timeout are set on the role. It joins pg_monitor (the ops dashboard reads pg_stat_activity, the
router pg_stat_wal_receiver). Its password comes from DATABASE_APP_PASSWORD; without one it logs in with
IAM auth tokens and, on RDS, joins rds_iam. With one (RDS Proxy, which cannot use IAM towards the database)
it leaves rds_iam: RDS refuses a password to a member of rds_iam.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction

from project.env import env_secret

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
IAM_ROLE = "rds_iam"  # RDS's: its members log in with IAM tokens only


class Command(BaseCommand):
    help = "Create or update the app's database role (DML only, statement/lock timeouts). Run as the owner."

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, database: str, **options):
        connection = connections[database]
        if connection.vendor != "postgresql":
            raise CommandError(f"{connection.vendor}: database roles need PostgreSQL")
        role = settings.DATABASE_APP_ROLE
        if not ROLE_NAME.match(role):
            raise CommandError(f"DATABASE_APP_ROLE={role!r} must be a plain lower-case name")
        bounds = settings.DATABASE_BOUNDS
        password = env_secret("DATABASE_APP_PASSWORD")
        name, schema = connection.ops.quote_name(role), "public"
        with transaction.atomic(using=database), connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            created = cursor.fetchone() is None
            if created:
                cursor.execute(f"CREATE ROLE {name} LOGIN")
            cursor.execute(f"ALTER ROLE {name} LOGIN NOCREATEDB NOCREATEROLE")
            if password:
                cursor.execute(f"ALTER ROLE {name} PASSWORD %s", [password])
            for setting in ("statement_timeout", "lock_timeout"):
                cursor.execute(f"ALTER ROLE {name} SET {setting} = %s", [f"{bounds.get(setting, 0)}ms"])
            cursor.execute(f"GRANT CONNECT ON DATABASE {connection.ops.quote_name(connection.settings_dict['NAME'])} "
                           f"TO {name}")  # fmt: skip
            cursor.execute(f"GRANT USAGE ON SCHEMA {schema} TO {name}")
            cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {name}")
            cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {name}")
            # Which migrations ran is the owner's business: the app may only read it.
            cursor.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON django_migrations FROM {name}")
            # Tables and sequences later migrations create (as this owner) get the same grants.
            cursor.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
                           f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {name}")  # fmt: skip
            cursor.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {name}")
            # PostgreSQL before 15 lets every role create tables in schema public: not the app's role.
            self._try(cursor, f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC")
            granted = ["pg_monitor"] if self._grant(cursor, "pg_monitor", name) else []
            if not password and self._grant(cursor, IAM_ROLE, name):
                granted.append(IAM_ROLE)
            elif password and self._exists(cursor, IAM_ROLE):
                self._try(cursor, f"REVOKE {IAM_ROLE} FROM {name}")
        timeouts = ", ".join(f"{key} {bounds.get(key, 0)} ms" for key in ("statement_timeout", "lock_timeout"))
        extras = (f", member of {', '.join(granted)}" if granted else "") + (", password set" if password else "")
        self.stdout.write(
            f"{'created' if created else 'updated'} role {role}: DML on schema {schema}, {timeouts}{extras}"
        )

    def _grant(self, cursor, member: str, name: str) -> bool:
        """GRANT an optional role if the server has it."""
        return self._exists(cursor, member) and self._try(cursor, f"GRANT {member} TO {name}")

    def _exists(self, cursor, role: str) -> bool:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        return cursor.fetchone() is not None

    def _try(self, cursor, sql: str) -> bool:
        """Run one statement in a savepoint; say so, and go on, when this owner may not do it."""
        try:
            with transaction.atomic(using=cursor.db.alias):
                cursor.execute(sql)
        except DatabaseError as exc:
            self.stderr.write(f"skipped {sql!r}: {str(exc).strip()}")
            return False
        return True
