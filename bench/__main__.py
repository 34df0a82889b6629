"""`make bench`: every benchmark, or those named (`python -m bench signup`).

The machine is shared and noisy, so each benchmark reports ratios of runs measured side by side in one
run (alternating rounds, medians). Each module exposes `run(bench: BenchEnv) -> dict` and prints its
own figures; the summaries are written to bench/results/<name>.json.
"""

from __future__ import annotations

import importlib
import json
import sys

from bench.env import services
from devenv.servers import BASE_DIR

BENCHMARKS = ["signup", "routing", "ops", "admin", "api", "webhooks"]  # each is bench/<name>.py
RESULTS = BASE_DIR / "bench" / "results"


def main(argv: list[str]) -> int:
    names = argv or BENCHMARKS
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        print(f"bench: unknown benchmark(s) {sorted(unknown)}; choose from {BENCHMARKS}", file=sys.stderr)
        return 2
    failed = False
    RESULTS.mkdir(exist_ok=True)
    with services(production=True) as bench:
        print("\n".join(bench.describe()), flush=True)
        for name in names:
            print(f"\n=== {name} ===", flush=True)
            summary = importlib.import_module(f"bench.{name}").run(bench)
            (RESULTS / f"{name}.json").write_text(json.dumps(summary, indent=2))
            failed |= bool(summary.get("failed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
