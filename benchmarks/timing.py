"""Repeated timing with warm-up, and the statistics every scenario reports."""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def time_calls(call: Callable[[], object], runs: int, warmup: int = 20) -> np.ndarray:
    """Milliseconds per call, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        call()
    times = np.empty(runs)
    for i in range(runs):
        began = time.perf_counter()
        call()
        times[i] = (time.perf_counter() - began) * 1000.0
    return times


def stats(ms: np.ndarray) -> dict[str, float]:
    return {"p50": round(float(np.median(ms)), 4), "p95": round(float(np.percentile(ms, 95)), 4),
            "p99": round(float(np.percentile(ms, 99)), 4), "mean": round(float(ms.mean()), 4), "runs": int(len(ms))}
