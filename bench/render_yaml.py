"""How long `moor.render` takes for a plain-YAML tree of 5,000 objects (and PyYAML's own loader, for scale).

Run: .venv/bin/python bench/render_yaml.py [--objects N] [--repeat R]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from moor.render import RenderRequest, render
from moor.render.safe_yaml import LIBYAML


def deployment(index: int) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-{index}
  namespace: team-{index % 7}
  labels: {{app: web-{index}, tier: frontend}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web-{index}}}
  template:
    metadata:
      labels: {{app: web-{index}}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports: [{{containerPort: 80}}]
        env:
        - {{name: MODE, value: production}}
        - {{name: INDEX, value: "{index}"}}
        resources:
          limits: {{cpu: 100m, memory: 128Mi}}
"""


def config_map(index: int) -> str:
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: settings-{index}
  namespace: team-{index % 7}
data:
  color: blue
  size: "{index}"
"""


def service(index: int) -> str:
    return f"""apiVersion: v1
kind: Service
metadata:
  name: web-{index}
  namespace: team-{index % 7}
spec:
  selector: {{app: web-{index}}}
  ports:
  - port: 80
    targetPort: 8080
"""


def write_tree(root: Path, objects: int) -> int:
    """`objects` objects in 10 directories of files holding 10 documents each; returns the bytes written."""
    makers = (deployment, config_map, service)
    size = 0
    for start in range(0, objects, 10):
        directory = root / f"team-{start // 10 % 10}"
        directory.mkdir(exist_ok=True)
        text = "---\n".join(makers[i % 3](i) for i in range(start, min(start + 10, objects)))
        (directory / f"objects-{start:06d}.yaml").write_text(text)
        size += len(text)
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="moor-bench-") as scratch:
        root = Path(scratch)
        size = write_tree(root, args.objects)
        files = sorted(root.rglob("*.yaml"))
        renders, stock = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            objects = asyncio.run(render(RenderRequest(root=root)))
            renders.append(time.perf_counter() - started)
            assert len(objects) == args.objects
            started = time.perf_counter()
            for file in files:
                list(yaml.load_all(file.read_bytes(), Loader=yaml.CSafeLoader))
            stock.append(time.perf_counter() - started)
    print(f"{args.objects} objects, {len(files)} files, {size / 1e6:.1f} MB, libyaml: {LIBYAML}")
    print(f"moor.render:                  best {min(renders):.3f}s  median {statistics.median(renders):.3f}s")
    print(f"yaml.CSafeLoader (no checks): best {min(stock):.3f}s  median {statistics.median(stock):.3f}s")


if __name__ == "__main__":
    main()
