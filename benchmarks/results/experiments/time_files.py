"""Per-window time of exported files against the bundled default, interleaved in one run (1 thread, batch 1),
as ser-bench times the default: for an ensemble file a cross-validation run exported (#50), which ser-bench
cannot name.

    .venv/bin/python benchmarks/results/experiments/time_files.py OUT.json NAME=PATH.int8.onnx ...
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from emovox.benchmarks.cli import speech_windows
from emovox.benchmarks.stages import onnx_runner, time_case
from emovox.realtime.model import default_model_path, metadata_path

ROUNDS, RUNS = 6, 200
"""Rounds of 200 timed windows per file, the files taking turns, so that drift in the host hits all alike."""


def main(out: Path, named: dict[str, Path]) -> None:
    shipped = default_model_path()
    windows = speech_windows(Path("../shared/data/ravdess"), 40)
    with tempfile.TemporaryDirectory() as tmp:
        files = {"shipped": shipped}
        for name, path in named.items():  # the runner reads the metadata beside a file; a fold export has none
            files[name] = Path(tmp) / f"{name}.int8.onnx"
            shutil.copy(path, files[name])
            shutil.copy(metadata_path(shipped), metadata_path(files[name]))
        runners = {name: onnx_runner(path, 1) for name, path in files.items()}
        timings: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(ROUNDS):
            for name, run in runners.items():
                timings[name].extend(time_case(run, windows, 1, RUNS).tolist())
    p50 = {name: round(float(np.median(ms)), 4) for name, ms in timings.items()}
    result = {"files": {name: str(path) for name, path in {"shipped": shipped, **named}.items()},
              "sizes_bytes": {name: path.stat().st_size for name, path in {"shipped": shipped, **named}.items()},
              "ms_per_window_p50": p50, "over_shipped": {name: round(ms / p50["shipped"], 3) for name, ms in p50.items()},
              "runs_per_file": ROUNDS * RUNS, "threads": 1, "batch": 1}
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    if len(sys.argv) < 3 or not all("=" in a for a in sys.argv[2:]):
        sys.exit("usage: time_files.py OUT.json NAME=PATH.int8.onnx ...")
    main(Path(sys.argv[1]), {a.split("=", 1)[0]: Path(a.split("=", 1)[1]) for a in sys.argv[2:]})
