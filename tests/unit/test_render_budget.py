"""Renderer processes share one budget: memory per process, and how many run at once."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from moor.render import RenderError, RenderRequest, render
from moor.render.tool import RenderBudget, configure_render_budget, render_budget, run_renderer

MIB = 1024 * 1024


def doubling_chart(times: int) -> dict[str, str]:
    """A six-line chart whose one template doubles a string: 28 times made helm peak at 1,188 MiB unbounded."""
    return {
        "charts/bomb/Chart.yaml": "apiVersion: v2\nname: bomb\nversion: 0.1.0\n",
        "charts/bomb/templates/bomb.yaml": (
            f'{{{{- $s := "x" }}}}{{{{- range until {times} }}}}{{{{- $s = printf "%s%s" $s $s }}}}{{{{- end }}}}\n'
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata: {size: {{ len $s | quote }}}\n"
        ),
    }


KUSTOMIZATION = {
    "app/kustomization.yaml": "resources: [settings.yaml]\nnamePrefix: prod-\n",
    "app/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: blue}\n",
}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def budget() -> Iterator[None]:
    before = render_budget()
    yield
    configure_render_budget(before)


@pytest.mark.parametrize(
    ("times", "limit", "shown"),
    [(28, RenderBudget(max_memory=256 * MIB), "256 MiB"), (29, RenderBudget(), "1024 MiB")],
    ids=["28-doublings-under-256MiB", "29-doublings-under-the-default"],
)
async def test_a_helm_template_that_needs_too_much_memory_fails_with_the_limit(
    tmp_path: Path, budget: None, times: int, limit: RenderBudget, shown: str
) -> None:
    configure_render_budget(limit)
    root = write_tree(tmp_path, doubling_chart(times))
    with pytest.raises(
        RenderError,
        match=rf"^helm template of charts/bomb exceeded the memory limit of {shown} \(moor run --max-render-memory\)$",
    ):
        await render(RenderRequest(root=root, path="charts/bomb"))


async def test_an_ordinary_kustomization_renders_within_a_small_memory_limit(tmp_path: Path, budget: None) -> None:
    configure_render_budget(RenderBudget(max_memory=128 * MIB))
    root = write_tree(tmp_path, KUSTOMIZATION)
    objects = await render(RenderRequest(root=root, path="app"))
    assert [(obj["kind"], obj["metadata"]["name"]) for obj in objects] == [("ConfigMap", "prod-settings")]


async def test_renders_beyond_the_concurrency_limit_wait_for_a_place(tmp_path: Path, budget: None) -> None:
    configure_render_budget(RenderBudget(max_concurrent=1))
    code = "import sys, time; print(time.monotonic()); time.sleep(0.3); print(time.monotonic())"

    async def one() -> tuple[float, float]:
        completed = await run_renderer(
            [sys.executable, "-c", code], what="sleeper", cwd=tmp_path, env={}, time_limit=30, max_output=None
        )
        started, ended = completed.checked().split()
        return float(started), float(ended)

    first, second = sorted(await asyncio.gather(one(), one()))
    assert second[0] >= first[1], "the second render started only once the first had ended"


def test_a_budget_needs_memory_and_a_place() -> None:
    with pytest.raises(ValueError):
        configure_render_budget(RenderBudget(max_concurrent=0))
