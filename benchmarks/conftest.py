"""pytest-benchmark suite of invbench's hot paths (issue 14): every number is a ratio.

Each benchmark times its subject with pytest-benchmark and, interleaved with it round by
round (in ``pedantic``'s untimed ``setup``), one or more **in-run references**: the code the
subject replaced, a raw library call doing the same work, or a measured machine peak. What
is reported is the ratio ``min(reference) / min(subject)`` (``speedup_vs_<name>`` in the
JSON's ``extra_info``, and in a table at the end of the run): on a shared machine absolute
times move with the load, ratios taken side by side much less.

Runs:

* ``python -m pytest benchmarks --benchmark-only`` -- small sizes, a few rounds;
* ``... --bench-size full`` -- the sizes of issue 14 (1e8 scores, LFW scale, batch 64);
* ``python -m pytest benchmarks --benchmark-disable -q`` -- each benchmark once, as a test
  (CI: checks that subject and references still run and still agree);
* ``--benchmark-json benchmarks/results/<name>.json`` -- the saved results; the machine
  description (CPU, cores, threads, library versions, load average) is added to
  ``machine_info`` by :func:`pytest_benchmark_update_machine_info`.

``tests/`` is the default test path, so ``python -m pytest`` never collects this folder.
"""

from __future__ import annotations

import logging
import os
import platform
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

logger = logging.getLogger("invbench.benchmarks")

#: ``(test id, reference, subject s, reference s, speedup)`` collected for the summary.
RATIOS: list[tuple[str, str, float, float, float]] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench-size",
        choices=("small", "full"),
        default="small",
        help="problem sizes: small (CI, seconds) or full (issue 14's sizes, minutes)",
    )
    parser.addoption(
        "--bench-rounds",
        type=int,
        default=None,
        help="rounds per benchmark (default: each benchmark's own, 2-5)",
    )


ROUNDS_OVERRIDE: list[int] = []


def pytest_configure(config: pytest.Config) -> None:
    rounds = config.getoption("--bench-rounds", None)
    if rounds:
        ROUNDS_OVERRIDE.append(int(rounds))
    from invbench.allocator import tune_malloc

    # as in every invbench run: the runner raises glibc's malloc thresholds first
    # (INVBENCH_MALLOC=system keeps glibc's defaults; test_allocator.py compares the two)
    tune_malloc()


@pytest.fixture(scope="session")
def full(request: pytest.FixtureRequest) -> bool:
    """Whether the run asked for issue 14's full sizes."""
    return request.config.getoption("--bench-size") == "full"


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Describe the machine: CPU model, cores, threads, instruction set, libraries, load."""
    import numpy as np
    import torch

    from invbench.allocator import malloc_state

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "numpy": np.__version__,
        "bench_size": config.getoption("--bench-size"),
        "malloc": malloc_state(),
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    try:
        info["loadavg_at_start"] = os.getloadavg()
    except OSError:
        pass
    machine_info["invbench"] = info


def peak_mb(fn: Callable[[], Any]) -> float:
    """Peak traced memory of one call of ``fn`` in MB (numpy and torch CPU buffers)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def compare(
    benchmark: Any,
    subject: Callable[[], Any],
    references: dict[str, Callable[[], Any]],
    *,
    rounds: int = 3,
    name: str = "",
) -> tuple[Any, dict[str, Any]]:
    """Time ``subject`` against ``references``, interleaved, and record the ratios.

    Args:
        benchmark: The pytest-benchmark fixture.
        subject: What is benchmarked (timed by pytest-benchmark).
        references: In-run references, each run once per round just before the subject.
        rounds: Rounds (``--bench-rounds`` overrides; benchmarks disabled: each runs once).
        name: Label for the summary (default: the test id).

    Returns:
        The subject's last result and each reference's last result (for agreement checks).
    """
    times: dict[str, list[float]] = {k: [] for k in references}
    outputs: dict[str, Any] = {}

    def setup() -> None:
        for key, fn in references.items():
            start = time.perf_counter()
            outputs[key] = fn()
            times[key].append(time.perf_counter() - start)

    if ROUNDS_OVERRIDE:
        rounds = ROUNDS_OVERRIDE[-1]
    result = benchmark.pedantic(subject, setup=setup, rounds=rounds, warmup_rounds=0)
    if benchmark.enabled:
        t_subject = float(benchmark.stats.stats.min)
        benchmark.extra_info["subject_min_s"] = t_subject
        for key, values in times.items():
            t_ref = min(values)
            benchmark.extra_info[f"{key}_min_s"] = t_ref
            benchmark.extra_info[f"speedup_vs_{key}"] = t_ref / t_subject
            RATIOS.append((name or benchmark.name, key, t_subject, t_ref, t_ref / t_subject))
            logger.info("%s: %.3g s vs %s %.3g s", benchmark.name, t_subject, key, t_ref)
    return result, outputs


def record(benchmark: Any, name: str, reference: str, value: float, **extra: Any) -> None:
    """Record a ratio computed by the benchmark itself (e.g. a share of a measured peak)."""
    benchmark.extra_info.update(extra)
    benchmark.extra_info[reference] = value
    if benchmark.enabled:
        RATIOS.append((name, reference, float("nan"), float("nan"), value))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the ratio table (subject vs its in-run references)."""
    if not RATIOS:
        return
    tr = terminalreporter
    tr.section("invbench ratios (reference / subject: > 1 means the subject is faster)")
    for test, ref, t_sub, t_ref, ratio in RATIOS:
        if t_sub == t_sub:  # not NaN
            tr.write_line(f"{test:58s} {ref:28s} {t_sub:9.4f}s {t_ref:9.4f}s  x{ratio:.3g}")
        else:
            tr.write_line(f"{test:58s} {ref:28s} {'':10s} {'':10s}  {ratio:.3g}")
