#!/usr/bin/env python
import os
import sys
from pathlib import Path

LOCAL_STATE = Path(__file__).resolve().parent / ".local" / "state.json"  # written by `make run`


def _use_make_runs_database() -> None:
    """Without DATABASE_URL, talk to the PostgreSQL `make run` made (not SQLite); stop it after if it was off."""
    import atexit
    from urllib.parse import urlsplit

    from devenv.run import local_environment

    found = local_environment()
    if found is None:
        return
    env, started = found
    os.environ.update(env)
    port = urlsplit(env["DATABASE_URL"]).port
    print(f"manage.py: using make run's PostgreSQL in .local/ (port {port}); set DATABASE_URL for another database",
          file=sys.stderr)  # fmt: skip
    for server in started:
        atexit.register(server.stop)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    if not os.environ.get("DATABASE_URL") and LOCAL_STATE.exists():
        _use_make_runs_database()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
