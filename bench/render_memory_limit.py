"""What the renderers' memory and CPU limits cost an ordinary render: helm template and kustomize build,
with and without them, in alternating pairs.

"With" is what `moor run` does (RLIMIT_DATA and RLIMIT_CPU set by `prlimit`, which execs the program, and
GOMEMLIMIT in the environment); "without" runs the same program through the same runner with only its time
and output bounds. It prints the median wall time and CPU time (of the child, exact whatever else the
machine runs) of each, and the median of the paired differences; it is not a test.

Run from the repository root:
    .venv/bin/python bench/render_memory_limit.py [--repeat 40]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from moor.binaries import locate
from moor.processes import ProcessLimits, run_process
from moor.render.tool import DEFAULT_MAX_RENDER_MEMORY, tool_environment

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    "values.yaml": "replicas: 2\nimage: nginx:1.27\ncolor: blue\n",
    "templates/deployment.yaml": """apiVersion: apps/v1
kind: Deployment
metadata: {name: {{ .Release.Name }}}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}}}
    spec:
      containers: [{name: web, image: {{ .Values.image | quote }}}]
""",
    "templates/service.yaml": """apiVersion: v1
kind: Service
metadata: {name: {{ .Release.Name }}}
spec:
  selector: {app: {{ .Release.Name }}}
  ports: [{port: 80}]
""",
    "templates/config.yaml": """apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}-settings}
data:
{{- range $i, $_ := until 50 }}
  key-{{ $i }}: {{ $.Values.color | quote }}
{{- end }}
""",
}
KUSTOMIZATION = {
    "kustomization.yaml": "resources: [deployment.yaml, service.yaml]\nnamePrefix: prod-\ncommonLabels: {team: web}\n",
    "deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
    "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
    "    spec: {containers: [{name: web, image: nginx}]}\n",
    "service.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n",
}
TIMEOUT = 120.0
MAX_OUTPUT = 64 * 1024 * 1024


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    """CPU seconds of the child (and of prlimit before it): exact, since one child runs at a time."""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def timed(argv: Sequence[str], cwd: Path, scratch: Path, limited: bool) -> Run:
    limits = ProcessLimits(TIMEOUT, max_output=MAX_OUTPUT)
    if limited:
        limits = ProcessLimits(TIMEOUT, MAX_OUTPUT, max_memory=DEFAULT_MAX_RENDER_MEMORY, max_cpu_seconds=TIMEOUT)
    cpu, started = children_cpu(), time.perf_counter()
    completed = await run_process(argv, what=argv[0], env=tool_environment(scratch), limits=limits, cwd=cwd)
    run = Run(time.perf_counter() - started, children_cpu() - cpu)
    completed.checked()
    return run


async def measure(name: str, argv: Sequence[str], cwd: Path, scratch: Path, repeat: int) -> str:
    for _ in range(3):  # warm the page cache
        await timed(argv, cwd, scratch, limited=False)
    with_limit: list[Run] = []
    without: list[Run] = []
    for index in range(repeat):
        order = (True, False) if index % 2 == 0 else (False, True)
        for limited in order:
            (with_limit if limited else without).append(await timed(argv, cwd, scratch, limited))
    lines = [f"{name}:"]
    for what in ("wall", "cpu"):
        plain = [getattr(run, what) for run in without]
        limited = [getattr(run, what) for run in with_limit]
        differences = [a - b for a, b in zip(limited, plain, strict=True)]
        quartiles = statistics.quantiles(differences, n=4)
        lines.append(
            f"  {what:<4} without {statistics.median(plain) * 1000:7.1f} ms   "
            f"with {statistics.median(limited) * 1000:7.1f} ms   "
            f"paired difference {statistics.median(differences) * 1000:+6.1f} ms "
            f"(p25 {quartiles[0] * 1000:+.1f}, p75 {quartiles[2] * 1000:+.1f})"
        )
    return "\n".join(lines)


async def main_async(repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="moor-bench-render-") as directory:
        root = Path(directory)
        chart = write_tree(root / "chart", CHART)
        kustomization = write_tree(root / "kustomization", KUSTOMIZATION)
        scratch = root / "scratch"
        scratch.mkdir()
        helm = [str(locate("helm")), "template", "web", str(chart), "--include-crds", "--skip-tests"]
        kustomize = [
            str(locate("kustomize")),
            "build",
            "--load-restrictor",
            "LoadRestrictionsRootOnly",
            str(kustomization),
        ]
        print(f"{repeat} pairs each, memory limit {DEFAULT_MAX_RENDER_MEMORY // 2**20} MiB")
        print(await measure("helm template", helm, chart, scratch, repeat))
        print(await measure("kustomize build", kustomize, kustomization, scratch, repeat))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=40, help="pairs of runs per program (default 40)")
    args = parser.parse_args(argv)
    asyncio.run(main_async(args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
