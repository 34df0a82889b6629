"""The RDS instances the dashboard charts: the primary, its read replicas (DescribeDBInstances), their sizes.

Sizes give the thresholds AWS recommends alarming on: FreeStorageSpace under 10 % of the allocated storage,
FreeableMemory under 25 % of the instance class's memory, connections near max_connections.
"""

from __future__ import annotations

import re

from botocore.exceptions import BotoCoreError, ClientError

from ops.cloudwatch import classify, client

GIB = 1024**3
# GiB of memory per "xlarge" of each instance family (db.r6g.2xlarge = 2 x 32 GiB); None = unknown.
_GIB_PER_XLARGE = {"t": 16, "m": 16, "r": 32, "x": 64, "z": 32, "c": 8}
_SIZES = {"micro": 1 / 16, "small": 1 / 8, "medium": 1 / 4, "large": 1 / 2, "xlarge": 1}


def class_memory_bytes(instance_class: str) -> int | None:
    """Return the memory of an RDS instance class (db.r6g.large -> 16 GiB), or None when unknown."""
    match = re.fullmatch(r"db\.([a-z])[a-z0-9-]*\.(\d*)(micro|small|medium|large|xlarge)", instance_class or "")
    if not match or match.group(1) not in _GIB_PER_XLARGE:
        return None
    family, times, size = match.groups()
    return int(_GIB_PER_XLARGE[family] * _SIZES[size] * int(times or 1) * GIB)


def default_max_connections(memory_bytes: int | None) -> int | None:
    """RDS for PostgreSQL's default: LEAST(DBInstanceClassMemory / 9531392, 5000)."""
    return min(memory_bytes // 9531392, 5000) if memory_bytes else None


def _describe(ids: list[str]) -> dict[str, dict]:
    reply = client("rds").describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": ids}])
    return {db["DBInstanceIdentifier"]: db for db in reply.get("DBInstances", [])}


def describe_instances(ids: list[str]) -> list[dict]:
    """Return the primary (ids[0]) and every replica, listed or discovered; class and storage where described."""
    try:
        found = _describe(ids)  # one call; discovered replicas need no sizes (thresholds use the primary's)
    except (BotoCoreError, ClientError) as exc:
        raise classify(exc) from exc
    discovered = found.get(ids[0], {}).get("ReadReplicaDBInstanceIdentifiers", [])
    instances = []
    for i, ident in enumerate(dict.fromkeys([*ids, *discovered])):
        db = found.get(ident, {})
        memory = class_memory_bytes(db.get("DBInstanceClass", ""))
        instances.append(
            {
                "id": ident,
                "role": "primary" if i == 0 else "replica",
                "described": bool(db),
                "instance_class": db.get("DBInstanceClass", ""),
                "allocated_bytes": db.get("AllocatedStorage", 0) * GIB,
                "memory_bytes": memory,
                "default_max_connections": default_max_connections(memory),
            }
        )
    return instances
