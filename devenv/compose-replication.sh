#!/bin/bash
# docker-compose only: let the replica container stream from the primary as the app user.
set -e
echo "host replication app all scram-sha-256" >> "$PGDATA/pg_hba.conf"
psql -v ON_ERROR_STOP=1 -U app -d app -c "ALTER ROLE app REPLICATION"
