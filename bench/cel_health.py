"""CEL health checks: what one health pass costs per object (the issue's target: under 50 µs).

For each recorded object of tests/unit/fixtures/health/ (cert-manager, Flux, Argo Rollouts,
Crossplane, Strimzi, CloudNativePG), times `assess_with_checks` against the built-in library: the
lookup, the generation check, the conversion of the fields the expressions read and the evaluation
of the three expressions folded into one program (objects without uid and resourceVersion, so every
call evaluates). Then a repeated pass: the same objects with uid and resourceVersion, unchanged since
the last pass (the common case of a health wait), answered from the verdicts already given.
Beside it, the built-in Python rule (`assess_health`) on the same object
for scale, and the one-off cost of compiling the library. Prints per-object CPU time (the median of
--rounds rounds of --repeat calls, so other load on the machine counts as little as it can).

    .venv/bin/python bench/cel_health.py [--repeat 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from moor.health import assess_health
from moor.health.cel import assess_with_checks, compile_checks
from moor.health.library import LIBRARY, library_checks

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "unit" / "fixtures" / "health"


def per_call(function: Callable[[], object], repeat: int, rounds: int) -> float:
    """Median CPU seconds of one call of `function` over `rounds` rounds of `repeat` calls."""
    samples = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(repeat):
            function()
        samples.append((time.process_time() - start) / repeat)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()

    start = time.process_time()
    compile_checks(LIBRARY)
    compile_seconds = time.process_time() - start
    checks = library_checks()
    objects: list[tuple[str, dict[str, Any]]] = [
        (path.stem, yaml.safe_load(path.read_text())) for path in sorted(FIXTURES.glob("*.yaml"))
    ]
    print(f"compiling the library ({len(LIBRARY)} entries): {compile_seconds * 1000:.1f} ms CPU, once per process\n")
    print(f"{'object':48} {'CEL check µs':>13} {'repeated µs':>12} {'Python rule µs':>15}  state")
    cel_costs = []
    repeated_costs = []
    for name, obj in objects:
        cel = per_call(lambda obj=obj: assess_with_checks(obj, checks), options.repeat, options.rounds)
        rule = per_call(lambda obj=obj: assess_health(obj), options.repeat, options.rounds)
        versioned = {**obj, "metadata": {**obj["metadata"], "uid": f"uid-{name}", "resourceVersion": "1"}}
        repeated = per_call(lambda obj=versioned: assess_with_checks(obj, checks), options.repeat, options.rounds)
        cel_costs.append(cel)
        repeated_costs.append(repeated)
        health = assess_with_checks(obj, checks)
        state = health.state.value if health else "-"
        print(f"{name:48} {cel * 1e6:13.1f} {repeated * 1e6:12.1f} {rule * 1e6:15.1f}  {state}")
    print(
        f"\nper object: median {statistics.median(cel_costs) * 1e6:.1f} µs, "
        f"max {max(cel_costs) * 1e6:.1f} µs over {len(objects)} recorded objects (target: under 50 µs); "
        f"unchanged since the last pass: median {statistics.median(repeated_costs) * 1e6:.1f} µs"
    )


if __name__ == "__main__":
    main()
