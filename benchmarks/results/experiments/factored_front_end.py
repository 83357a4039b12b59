"""The bundled files' front end swapped for the two-stage DFT (``train/factored_frontend.py``, session 26),
and what that changes. No weight and no int8 scale is touched: only the ``/frontend/`` nodes.

For each bundled model (and the default's fp32 file): swap the front end in place (the current
two-stage one replaces whichever front end the file holds), then compare the file with a copy that
carries the convolution front end (exported from ``model.LogMel``, as every file was before session 26):
- on every RAVDESS file, windowed and averaged per file as the runtime does (``recipe.raw_windows``):
  how often the top label is the same, how far the probabilities move;
- time per window, both files interleaved in one run (``time_onnx_files.interleaved_p50``);
then recompute each int8 file's shipped parity (fold 1's 240 files against its PyTorch model, as
``ser-train ship`` does) and its size in the metadata. Rerunning swaps again and measures again:

    .venv/bin/python benchmarks/results/experiments/factored_front_end.py benchmarks/results/experiments/factored-front-end
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emovox.benchmarks.cli import speech_windows
from emovox.realtime.model import BUNDLED_MODELS, bundled_model_path, metadata_path
from emovox.train import folds as emobox
from emovox.train.corpora import load_ravdess
from emovox.train.ensemble import shipped_model
from emovox.train.export import INPUT_NAME
from emovox.train.factored_frontend import DESCRIPTION as FRONTEND_GRAPH
from emovox.train.factored_frontend import PREFIX, factor_front_end, front_end_of, put_front_end
from emovox.train.fit import per_utterance
from emovox.train.model import FrontendSpec, LogMel
from emovox.train.recipe import Recipe, onnx_probs, parity, raw_windows
from time_onnx_files import interleaved_p50

RAVDESS = Path("../shared/data/ravdess")


class _FrontEndOnly(nn.Module):
    """``model.LogMel`` under the name the exported models give it, so its nodes are ``/frontend/...``."""

    def __init__(self, spec: FrontendSpec) -> None:
        super().__init__()
        self.frontend = LogMel(spec)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.frontend(wave)


def with_conv_front_end(path: Path, spec: FrontendSpec, window_samples: int, folder: Path) -> Path:
    """A copy of ``path`` (and its metadata) whose front end is training's convolution."""
    alone, copy = folder / "conv_front_end.onnx", folder / f"conv-{path.name}"
    torch.onnx.export(_FrontEndOnly(spec), (torch.zeros(1, window_samples),), str(alone), dynamo=False,
                      opset_version=17, input_names=[INPUT_NAME], output_names=["log_mel"],
                      dynamic_axes={INPUT_NAME: {0: "batch"}})
    shutil.copy(path, copy)
    shutil.copy(metadata_path(path), metadata_path(copy))
    nodes, constants = front_end_of(alone)
    for node in nodes:  # the files' optimised graphs may still hold a constant named like the exporter's
        node.name = node.name.replace(PREFIX, PREFIX + "conv/", 1)
        node.input[:] = [name.replace(PREFIX, PREFIX + "conv/", 1) for name in node.input]
        node.output[:] = [name.replace(PREFIX, PREFIX + "conv/", 1) for name in node.output]
    put_front_end(copy, nodes, constants)
    return copy


def compare(factored: Path, conv: Path, windows: np.ndarray, owner: np.ndarray, n_files: int) -> dict:
    new, old = onnx_probs(factored, windows), onnx_probs(conv, windows)
    new_files, old_files = per_utterance(new, owner, n_files), per_utterance(old, owner, n_files)
    moved = np.abs(new_files - old_files)
    return {"files": n_files, "windows": len(windows),
            "same_top1_files": round(float(np.mean(new_files.argmax(1) == old_files.argmax(1))), 4),
            "same_top1_windows": round(float(np.mean(new.argmax(1) == old.argmax(1))), 4),
            "max_abs_prob_diff_files": round(float(moved.max()), 4),
            "mean_abs_prob_diff_files": round(float(moved.mean()), 5)}


def fp32_beside(int8: Path) -> Path:
    """The fp32 file ``ser-train ship`` writes beside an int8 one (bundled for the default only)."""
    return int8.with_name(int8.name.replace(".int8.", ".fp32."))


def refresh_metadata(int8: Path, shipped_parity: dict) -> None:
    """The new parity and sizes in the metadata of ``int8`` and of its fp32 file, where there is one."""
    fp32 = fp32_beside(int8)
    for path in [p for p in (int8, fp32) if p.exists()]:
        meta = json.loads(metadata_path(path).read_text())
        meta["shipped_parity"], meta["frontend_graph"] = shipped_parity, FRONTEND_GRAPH
        meta["sizes_bytes"] = {**meta["sizes_bytes"], **{kind: side.stat().st_size for kind, side in
                                                          (("int8", int8), ("fp32", fp32)) if side.exists()}}
        metadata_path(path).write_text(json.dumps(meta, indent=1) + "\n")


def main(out: Path) -> None:
    recipe = Recipe()
    items = load_ravdess(RAVDESS)
    windows, owner = raw_windows(items, recipe)
    fold_files = [u for u in items if u.speaker in emobox.test_speakers(1)]
    timing_windows = speech_windows(RAVDESS, 40)
    files = {name: bundled_model_path(name) for name in BUNDLED_MODELS}
    files["default fp32"] = fp32_beside(bundled_model_path("default"))
    results = {}
    for name, path in files.items():
        meta = json.loads(metadata_path(path).read_text())
        spec = FrontendSpec(**meta["frontend"])
        factor_front_end(path, spec, meta["window_samples"], INPUT_NAME)  # again, if it already was
        with tempfile.TemporaryDirectory() as tmp:
            conv = with_conv_front_end(path, spec, meta["window_samples"], Path(tmp))
            result = {"bytes": path.stat().st_size,
                      "against_conv_front_end": compare(path, conv, windows, owner, len(items))}
            p50 = interleaved_p50({"factored": path, "conv": conv}, timing_windows)
        result["ms_per_window_p50"] = p50
        result["factored_over_conv"] = round(p50["factored"] / p50["conv"], 3)
        if name in BUNDLED_MODELS:
            shipped = parity(shipped_model(meta, Path("models") / f"{meta['name']}.pt"), path, fold_files, recipe)
            result["shipped_parity"] = {k: shipped[k] for k in ("files", "same_top1", "max_abs_prob_diff")}
        results[name] = result
        print(name, json.dumps(result), flush=True)
    for name in BUNDLED_MODELS:
        refresh_metadata(bundled_model_path(name), results[name]["shipped_parity"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "agreement.json").write_text(json.dumps(results, indent=1) + "\n")
    rows = ["| file | bytes | same top label, files / windows | max / mean abs prob change "
            "| p50 ms per window, factored / conv | ratio |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        a, p = r["against_conv_front_end"], r["ms_per_window_p50"]
        rows.append(f"| {name} | {r['bytes']:,} | {a['same_top1_files']:.4f} / "
                    f"{a['same_top1_windows']:.4f} | {a['max_abs_prob_diff_files']:.4f} / "
                    f"{a['mean_abs_prob_diff_files']:.5f} | {p['factored']:.3f} / {p['conv']:.3f} | "
                    f"{r['factored_over_conv']:.3f} |")
    (out / "agreement.md").write_text(
        f"Two-stage DFT front end against training's convolution, same weights, {len(items)} RAVDESS files "
        "(all of them training files of the bundled models: agreement, not accuracy); time interleaved in one "
        "run, 1 thread, batch 1.\n\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
