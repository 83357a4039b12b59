"""Experiment #39's rule, pooled over seeds 2 and 3: does the three-member ensemble (default, noise,
window-mean) replace the shipped pair (default, window-mean)?

Each triple fold is set against the pair of its own seed and fold. The three replace the pair if (a) their
mean test UA and mean validation UA are each at most 0.5 point under the pair's, (b) their mean int8 UA at
10 dB (white and babble averaged) is at least 5 points above the pair's, and (c) the seed-3 file is at most
1,000,000 bytes and 2 ms per window. Until all 12 fold pairs are in, the verdict says how many are.

A seed's results are its ``ravdess_cv.json`` once all its folds ran, else the fold evaluations that
``ser-train cv`` cached, kept in the folder's ``evaluations/`` across sessions (copy them back into
``.cache/features/evaluations/`` and ``ser-train cv`` reuses them instead of training those folds again):

    .venv/bin/python benchmarks/results/experiments/rule_39.py benchmarks/results/experiments/rule-39
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
SOURCES = {2: {"pair": HERE / "ensemble-10-24-seed2", "triple": HERE / "ensemble-10-18-24-seed2"},
           3: {"pair": HERE / "ensemble-10-24-seed3", "triple": HERE / "ensemble-10-18-24-seed3"}}
FOLD_PAIRS = 12
MAX_UA_LOSS, MIN_10DB_GAIN = 0.005, 0.05
MAX_BYTES, MAX_MS = 1_000_000, 2.0


def fold_results(folder: Path) -> dict[int, dict]:
    """Fold number -> that fold's evaluation, from the finished cross-validation or the kept evaluations."""
    finished = folder / "ravdess_cv.json"
    found = json.loads(finished.read_text())["folds"] if finished.exists() else [
        json.loads(path.read_text()) for path in sorted((folder / "evaluations").glob("fold*.json"))]
    return {result["fold"]: result for result in found}


def ua_at_10_db(result: dict) -> float:
    """The int8 file's UA at 10 dB SNR, the mean of white noise and babble."""
    return (result["int8_ua_by_snr"]["white"]["10"] + result["int8_ua_by_snr"]["babble"]["10"]) / 2


MEASURES = {"ua": lambda result: result["ua"], "validation_ua": lambda result: result["validation_ua"],
            "int8_ua_10db": ua_at_10_db}


def file_check(folder: Path) -> dict | None:
    """Size and per-window time of the triple's file, from ``time_onnx_files.py``'s output if it ran."""
    timing = folder / "file_timing.json"
    if not timing.exists():
        return None
    measured = json.loads(timing.read_text())
    size, ms = measured["sizes_bytes"]["three"], measured["ms_per_window_p50"]["three"]
    return {"bytes": size, "ms_per_window_p50": ms, "holds": size <= MAX_BYTES and ms <= MAX_MS}


def judge() -> dict:
    """Per fold pair the three measures of both models, their pooled means and the rule's verdict."""
    rows = []
    for seed, folders in SOURCES.items():
        pair, triple = fold_results(folders["pair"]), fold_results(folders["triple"])
        for fold in sorted(set(pair) & set(triple)):
            models = {"pair": pair[fold], "triple": triple[fold]}
            rows.append({"seed": seed, "fold": fold, **{f"{name}_{measure}": round(value(result), 4)
                                                        for name, result in models.items()
                                                        for measure, value in MEASURES.items()}})
    means = {key: round(float(np.mean([row[key] for row in rows])), 4)
             for key in rows[0] if key not in ("seed", "fold")} if rows else {}
    checks = {}
    if rows:
        checks["a_test_ua"] = means["triple_ua"] >= means["pair_ua"] - MAX_UA_LOSS
        checks["a_validation_ua"] = means["triple_validation_ua"] >= means["pair_validation_ua"] - MAX_UA_LOSS
        checks["b_10db_gain"] = means["triple_int8_ua_10db"] >= means["pair_int8_ua_10db"] + MIN_10DB_GAIN
    file = file_check(SOURCES[3]["triple"])
    if file is not None:
        checks["c_file"] = file["holds"]
    complete = len(rows) == FOLD_PAIRS and len(checks) == 4
    verdict = (("passes" if all(checks.values()) else "fails") if complete
               else f"incomplete: {len(rows)} of {FOLD_PAIRS} fold pairs" + ("" if file else ", file not timed"))
    return {"fold_pairs": rows, "means": means, "checks": checks, "seed3_file": file, "verdict": verdict}


def markdown(result: dict) -> str:
    """The fold pairs and their means as a table, then the verdict."""
    columns = ("pair_ua", "triple_ua", "pair_validation_ua", "triple_validation_ua",
               "pair_int8_ua_10db", "triple_int8_ua_10db")
    lines = ["| seed | fold | " + " | ".join(c.replace("_", " ") for c in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    lines += [f"| {r['seed']} | {r['fold']} | " + " | ".join(f"{r[c]:.3f}" for c in columns) + " |"
              for r in result["fold_pairs"]]
    if result["means"]:
        lines.append("| **mean** | | " + " | ".join(f"**{result['means'][c]:.3f}**" for c in columns) + " |")
    checks = ", ".join(f"{name} {'holds' if held else 'fails'}" for name, held in result["checks"].items())
    return "\n".join(lines) + f"\n\nChecks: {checks or 'none yet'}. **Verdict: {result['verdict']}.**\n"


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    outcome = judge()
    (out / "rule_39.json").write_text(json.dumps(outcome, indent=1) + "\n")
    (out / "rule_39.md").write_text(markdown(outcome))
    print(markdown(outcome))
