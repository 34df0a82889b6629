"""`make drills`: every fault drill under load, or those named (`python -m drills freeze_primary`).

Each drill starts its own app on one shared primary + replica + Redis, prints its figures and checks, and
writes them to drills/results/<name>.json. Exit status 1 when any check of any drill failed.
"""

from __future__ import annotations

import importlib
import json
import signal
import sys
import time
import traceback

from bench.env import services
from devenv.servers import BASE_DIR
from drills.faults import thaw_all
from drills.harness import run

# In this order: promote_replica leaves the replica as the primary, so it comes last. restore runs on its own
# primary (WAL archiving, a base backup, a point-in-time restore), not under the shared load: `standalone`.
DRILLS = ["kill_replica", "pause_replay", "kill_redis", "freeze_redis", "restart_primary", "freeze_primary",
          "freeze_replica", "freeze_replica_staff", "slow_clients", "restore", "promote_replica"]  # fmt: skip
RESULTS = BASE_DIR / "drills" / "results"


def _row(result: dict) -> str:
    whole, fault = result.get("figures", {}).get("all", {}), result.get("figures", {}).get("fault", {}).get("all", {})
    failed = " ".join(f"{s}:{n}" for s, n in whole.get("failed_by_status", {}).items()) or "-"
    missed = [c["what"] for c in result.get("checks", []) if not c["passed"]] or (
        [result["error"]] if "error" in result else []
    )
    return (f"{result['drill']:16s} {whole.get('sent', 0):6d} {whole.get('failed', 0):6d}  {failed[:34]:34s} "
            f"{fault.get('p50_ms', 0):7.0f} {fault.get('p99_ms', 0):7.0f} {result.get('missing', '?'):>5}  "
            f"{'PASS' if not result['failed'] else 'FAIL: ' + '; '.join(missed)}")  # fmt: skip


def main(argv: list[str]) -> int:
    unknown = set(argv) - set(DRILLS)
    if unknown:
        print(f"drills: unknown drill(s) {sorted(unknown)}; choose from {DRILLS}", file=sys.stderr)
        return 2
    names = [name for name in DRILLS if name in argv] if argv else DRILLS
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: thaw, stop servers
    RESULTS.mkdir(exist_ok=True)
    results, started = [], time.monotonic()
    with services() as env:
        for name in names:
            print(f"\n=== {name} ===", flush=True)
            try:
                module = importlib.import_module(f"drills.{name}")
                result = module.standalone(env) if hasattr(module, "standalone") else run(env, module.drill(env))
            except Exception as exc:
                traceback.print_exc()
                result = {"drill": name, "failed": True, "error": f"{exc.__class__.__name__}: {exc}"}
            finally:
                thaw_all()
            (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
            results.append(result)
    print(f"\n=== summary ({time.monotonic() - started:.0f} s) ===")
    print(f"{'drill':16s} {'sent':>6s} {'failed':>6s}  {'failures by status':34s} {'p50*':>7s} {'p99*':>7s} "
          f"{'lost':>5s}  result      (* ms, all requests sent during the fault)")  # fmt: skip
    for result in results:
        print(_row(result))
    return 1 if any(r["failed"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
