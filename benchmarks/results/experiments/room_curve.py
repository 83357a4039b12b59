"""Experiments #33-#34's comparison: int8 UA in the benchmark's reverberant rooms for fold models trained
before the room condition existed (evaluation version 4), scored as `ser-train cv` now scores it.

Each fold model is exported and quantized as `ser-train cv` exports it (same calibration files), its
clean int8 UA is checked against its cached evaluation, then `robustness.ua_in_rooms` runs with
the fold's seed, so the impulse responses are the ones a version-4 evaluation of that fold draws.
Ad hoc, like `average_folds.py` (it reads the cached checkpoints under .cache/features):

    .venv/bin/python benchmarks/results/experiments/room_curve.py 10,23,24 benchmarks/results/experiments/room-curve
"""
from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from average_folds import CACHE, load_member, member_preset
from emovox.train import folds as emobox
from emovox.train.corpora import LABELS, load_corpora, read_audio
from emovox.train.recipe import TEACHERS, Recipe, calibration_items, export_model, full_model, load_corpus
from emovox.train.robustness import int8_ua, ua_in_rooms


def main(names: list[str], out: Path) -> None:
    torch.set_num_threads(1)
    recipe = Recipe()
    corpus = load_corpus(load_corpora(Path("../shared/data")), recipe, CACHE, print)
    rows = []
    for fold in emobox.EMOBOX_TEST_ACTORS:
        train_idx, _, test_idx = emobox.split_with_validation(corpus.items, fold)
        train_idx = recipe.trainable(corpus.items, train_idx)
        test_items = [corpus.items[i] for i in test_idx]
        truth = np.array([u.label_index for u in test_items])
        clean = [read_audio(u.path) for u in test_items]
        row: dict = {"fold": fold}
        for name in names:
            backbone, cached = load_member(name, fold, recipe, corpus.items)
            own = replace(recipe, train=TEACHERS[member_preset(name)])  # #24's graph subtracts the window mean
            with tempfile.TemporaryDirectory() as work:
                _, int8 = export_model(full_model(backbone, own, cached["temperature"]), Path(work), "model",
                                       calibration_items([corpus.items[i] for i in train_idx],
                                                         recipe.calibration_files, recipe.train.seed), own)
                clean_ua = int8_ua(int8, clean, truth, recipe)
                assert clean_ua == round(cached["int8"]["ua"], 4), (name, fold, clean_ua, cached["int8"]["ua"])
                row[name] = {"clean": clean_ua, **ua_in_rooms(int8, clean, truth, recipe, seed=fold)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    summary = {name: {level: round(float(np.mean([r[name][level] for r in rows])), 4) for level in rows[0][name]}
               for name in names}
    out.mkdir(parents=True, exist_ok=True)
    (out / "room_curve.json").write_text(json.dumps({"members": names, "labels": LABELS, "summary": summary,
                                                     "folds": rows}, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main(sys.argv[1].split(","), Path(sys.argv[2]))
