"""Stopping stops exactly the processes that were started, never a pid that now runs something else."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from moor.devcluster import processes

SLEEPER = (sys.executable, "-c", "import time; time.sleep(60)")


def test_stop_ends_a_started_process_and_reaps_it(tmp_path: Path) -> None:
    started = processes.spawn("sleeper", SLEEPER, tmp_path / "sleeper.log", os.environ)
    assert processes.is_running(started)

    survivors = processes.stop([started], grace=5)

    assert survivors == []
    assert not processes.is_running(started)
    assert not Path(f"/proc/{started.pid}").exists()  # reaped, not a zombie


def test_a_pid_running_another_program_is_left_alone(tmp_path: Path) -> None:
    started = processes.spawn("sleeper", SLEEPER, tmp_path / "sleeper.log", os.environ)
    impostor = processes.RunningProcess("etcd", started.pid, ("/usr/bin/etcd", "--data-dir=x"), started.log)
    try:
        assert not processes.is_running(impostor)
        processes.stop([impostor], grace=0.2)
        assert processes.is_running(started)
    finally:
        processes.stop([started], grace=5)


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    stubborn = (
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)",
    )
    started = processes.spawn("stubborn", stubborn, tmp_path / "stubborn.log", os.environ)
    deadline = time.monotonic() + 30
    while b"up" not in started.log.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.02)  # until it ignores SIGTERM

    assert processes.stop([started], grace=0.5) == []
    assert not processes.is_running(started)


def test_the_log_tail_shows_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "component.log"
    log.write_text("".join(f"line {n}\n" for n in range(100)))

    assert processes.log_tail(log, lines=2).splitlines() == ["    line 98", "    line 99"]
    assert "no log" in processes.log_tail(tmp_path / "missing.log")
