"""The variables table cannot drift: docs/configuration.md and .env.example list exactly what the code reads.

Names are read from the source by parsing it (ast), not from a list kept by hand:
- calls of project/env.py's helpers with a literal name (`env_str("REDIS_URL")`, …; `env_secret` also reads
  `NAME_FILE`);
- `os.environ.get("X")`, `os.getenv("X")`, `os.environ["X"]` read (not assigned), `"X" in os.environ`.

The service (its packages, manage.py, gunicorn.conf.py, devenv) must be in both files; the tools (bench/,
drills/, tests/) only in docs/configuration.md. A name listed in either file that nothing reads is stale.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICE = ("project", "users", "api", "ops", "staff", "devenv", "manage.py", "gunicorn.conf.py")
TOOLS = ("bench", "drills", "tests")
# Every env_* function project/env.py defines (a new helper is seen without a change here).
HELPERS = {n.name for n in ast.parse((ROOT / "project" / "env.py").read_text()).body
           if isinstance(n, ast.FunctionDef) and n.name.startswith("env_")}  # fmt: skip
DOC = ROOT / "docs" / "configuration.md"
EXAMPLE = ROOT / ".env.example"
NAME = re.compile(r"^[A-Z][A-Z0-9_]*[A-Z0-9]$")


def _is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and getattr(node.value, "id", None) == "os"


def _literal(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.match(node.value):
        return node.value
    return None


def names_read(source: str) -> set[str]:
    """Return the environment variables this Python source reads by a literal name."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func, first = node.func, _literal(node.args[0] if node.args else None)
            if first is None:
                continue
            if isinstance(func, ast.Name) and func.id in HELPERS:
                found |= {first, f"{first}_FILE"} if func.id == "env_secret" else {first}
            elif isinstance(func, ast.Attribute) and (
                (func.attr == "get" and _is_os_environ(func.value))
                or (func.attr == "getenv" and getattr(func.value, "id", None) == "os")
            ):
                found.add(first)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_os_environ(node.value):
            if name := _literal(node.slice):
                found.add(name)
        elif (
            isinstance(node, ast.Compare)
            and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
            and _is_os_environ(node.comparators[0])
            and (name := _literal(node.left))
        ):
            found.add(name)
    return found


def reads(roots: tuple[str, ...]) -> dict[str, list[str]]:
    """Map each variable read under these roots to the files reading it."""
    where = defaultdict(list)
    for root in roots:
        path = ROOT / root
        for file in [path] if path.is_file() else sorted(path.rglob("*.py")):
            for name in names_read(file.read_text()):
                where[name].append(str(file.relative_to(ROOT)))
    return where


def documented() -> set[str]:
    """Return the variables named in the first column of docs/configuration.md's tables."""
    names = set()
    for line in DOC.read_text().splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            first_cell = line.split("|")[1]
            names |= {n for n in re.findall(r"`([^`]+)`", first_cell) if NAME.match(n)}
    return names


def in_env_example() -> set[str]:
    """Return every NAME= in .env.example (the commented-out settings, and NAME_FILE= alternatives in comments)."""
    return set(re.findall(r"\b([A-Z][A-Z0-9_]*[A-Z0-9])=", EXAMPLE.read_text()))


def _report(names: set[str], where: dict[str, list[str]]) -> str:
    return ", ".join(f"{n} ({', '.join(where.get(n, []))})" if where.get(n) else n for n in sorted(names))


def test_the_parser_finds_every_kind_of_read():
    source = """
import os
from project.env import env_int, env_secret
a = env_int("A_INT", 1)
b = env_secret("B_SECRET")
c = os.environ.get("C_GET", "x")
d = os.getenv("D_GETENV")
e = os.environ["E_ITEM"]
f = "F_IN" in os.environ
os.environ["G_ASSIGNED"] = "1"
h = env_int(name, 1)
"""
    assert names_read(source) == {"A_INT", "B_SECRET", "B_SECRET_FILE", "C_GET", "D_GETENV", "E_ITEM", "F_IN"}


def test_the_parser_sees_the_settings_it_must_see():
    service = reads(SERVICE)
    # One of each way the service reads: a helper, a secret with its _FILE, gunicorn's os.environ, manage.py's.
    for name in ("REDIS_URL", "READY_TOKEN_FILE", "WEB_CONCURRENCY", "DATABASE_URL", "DATABASE_APP_PASSWORD"):
        assert name in service, name
    assert len(service) > 80


def test_every_variable_the_service_reads_is_documented_and_in_env_example():
    service = reads(SERVICE)
    missing_doc = set(service) - documented()
    missing_example = set(service) - in_env_example()
    assert not missing_doc, f"read but not in docs/configuration.md: {_report(missing_doc, service)}"
    assert not missing_example, f"read but not in .env.example: {_report(missing_example, service)}"


def test_every_variable_the_tools_read_is_documented():
    tools = reads(TOOLS)
    missing = set(tools) - set(reads(SERVICE)) - documented()
    assert not missing, f"read by the tools but not in docs/configuration.md: {_report(missing, tools)}"


def test_nothing_listed_is_stale():
    service = set(reads(SERVICE))
    stale_doc = documented() - service - set(reads(TOOLS))
    stale_example = in_env_example() - service
    assert not stale_doc, f"in docs/configuration.md but read nowhere: {', '.join(sorted(stale_doc))}"
    assert not stale_example, f"in .env.example but not read by the service: {', '.join(sorted(stale_example))}"
