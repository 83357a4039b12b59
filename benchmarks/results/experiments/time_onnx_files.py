"""Per-window time of model files against one another, measured in one run: interleaved rounds, one
thread, batch 1 (the issue's 2 ms is ``ser-bench``'s int8 case), so a noisy machine slows all alike.
Experiment #38 times the three-member fold export ``ser-train cv --ensemble`` leaves in
``.cache/features/exports/`` against the bundled models (then ``exports/fold1/``; since session 31
each evaluation has its own folder, named as its cached evaluation, ``exports/fold1-v4-KEYS/``):

    .venv/bin/python benchmarks/results/experiments/time_onnx_files.py OUT.json \\
        default=models/emotion_cnn_lstm.int8.onnx three=.cache/features/exports/fold1/model.int8.onnx

A fold export has no metadata beside it; the shipped default's is put beside a copy (the runtime's
Classifier reads labels and window length there; they are the same for every recipe).
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emovox.benchmarks.cli import speech_windows
from emovox.benchmarks.stages import onnx_runner, time_case
from emovox.realtime.model import default_model_path, metadata_path

ROUNDS, RUNS = 6, 200


def interleaved_p50(runners: dict[str, Callable[[np.ndarray], object]], windows: np.ndarray) -> dict[str, float]:
    """Median milliseconds per window of each runner (one file's session, ``onnx_runner``), its runs
    interleaved with the others'."""
    timings: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(ROUNDS):
        for name, run in runners.items():
            timings[name].extend(time_case(run, windows, 1, RUNS).tolist())
    return {name: round(float(np.median(ms)), 4) for name, ms in timings.items()}


def with_metadata(name: str, path: Path, folder: Path) -> Path:
    """``path`` itself when metadata lies beside it, else a copy named ``name`` beside the shipped default's."""
    if metadata_path(path).exists():
        return path
    copy = folder / f"{name}.onnx"
    shutil.copy(path, copy)
    shutil.copy(metadata_path(default_model_path()), metadata_path(copy))
    return copy


def main(out: Path, named: list[str]) -> None:
    files = {name: Path(path) for name, path in (item.split("=", 1) for item in named)}
    windows = speech_windows(Path("../shared/data/ravdess"), 40)
    with tempfile.TemporaryDirectory() as tmp:
        p50 = interleaved_p50({name: onnx_runner(with_metadata(name, path, Path(tmp)), 1)
                               for name, path in files.items()}, windows)
    first = next(iter(p50))
    result = {"files": {name: str(path) for name, path in files.items()},
              "sizes_bytes": {name: path.stat().st_size for name, path in files.items()},
              "ms_per_window_p50": p50, f"over_{first}": {name: round(ms / p50[first], 3) for name, ms in p50.items()},
              "runs_per_file": ROUNDS * RUNS, "threads": 1, "batch": 1}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: time_onnx_files.py OUT.json NAME=FILE.onnx [NAME=FILE.onnx ...]")
    main(Path(sys.argv[1]), sys.argv[2:])
