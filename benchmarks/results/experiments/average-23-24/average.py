"""Experiment #26: #23's and #24's fold models averaged (per-file probabilities, each at its own
temperature). Ad hoc: it reads the fold checkpoints that `ser-train cv` cached in session 12-13
(.cache/features/checkpoints, not committed), so only a checkout holding them can rerun it:

    .venv/bin/python benchmarks/results/experiments/average-23-24/average.py
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from emovox.train import folds as emobox
from emovox.train.calibration import utterance_probs
from emovox.train.corpora import LABELS, load_corpora, read_audio
from emovox.train.crossval import backbone_logits, group_ua
from emovox.train.fit import new_backbone
from emovox.train.metrics import evaluate
from emovox.train.model import LogMel
from emovox.train.recipe import SHIPPED_TRAINING, Recipe, load_corpus, recording_windows

CACHE = Path(".cache/features")
OUT = Path(__file__).parent
# fold -> checkpoint key, found by each cached evaluation's test UA, phone-line UA and date
RECIPES = {
    "#23 phone+noise": (replace(SHIPPED_TRAINING, phone_probability=0.3, noise_probability=0.3),
                        {1: "058b1f6e67f52b4b", 2: "479de66d96efe87d", 3: "c2222b257c3bce3e",
                         4: "1b77b930e8501f2a", 5: "2a3149981cc60172", 6: "cfcec14e233f8c16"}),
    "#24 window mean": (replace(SHIPPED_TRAINING, window_mean=True),
                        {1: "a297a632847c1e83", 2: "60f9e2fb43db409f", 3: "68d0e867c5307714",
                         4: "48c6be06e8474424", 5: "381f0c7767c66ac6", 6: "5122d6f25b6c15d7"}),
}


def main() -> None:
    torch.set_num_threads(1)
    recipe = Recipe()
    corpus = load_corpus(load_corpora(Path("../shared/data")), recipe, CACHE, print)
    folds = []
    for fold in range(1, 7):
        _, val_idx, test_idx = emobox.split_with_validation(corpus.items, fold)
        val_logmel, _, val_owner = corpus.windows_of(val_idx)
        val_truth = np.array([corpus.items[i].label_index for i in val_idx])
        test_items = [corpus.items[i] for i in test_idx]
        truth = np.array([u.label_index for u in test_items])
        windows, owner = recording_windows([read_audio(u.path) for u in test_items], recipe)
        with torch.no_grad():
            test_logmel = LogMel(recipe.frontend)(torch.from_numpy(windows)).numpy()
        row: dict = {"fold": fold}
        val_probs, test_probs = [], []
        for name, (settings, keys) in RECIPES.items():
            cached = json.loads(next((CACHE / "evaluations").glob(f"fold{fold}-v3-{keys[fold]}.json")).read_text())
            backbone = new_backbone(len(LABELS), settings, recipe.frontend)
            backbone.load_state_dict(torch.load(CACHE / "checkpoints" / f"backbone-{keys[fold]}.pt"))
            backbone.eval()
            t = cached["temperature"]
            v = utterance_probs(backbone_logits(backbone, val_logmel), val_owner, len(val_idx), t)
            p = utterance_probs(backbone_logits(backbone, test_logmel), owner, len(test_items), t)
            row[name] = {"ua": evaluate(truth, p.argmax(1), LABELS)["ua"],
                         "validation_ua": evaluate(val_truth, v.argmax(1), LABELS)["ua"],
                         "committed_ua": cached["ua"], "committed_validation_ua": cached["validation_ua"]}
            val_probs.append(v)
            test_probs.append(p)
        pred = np.mean(test_probs, 0).argmax(1)
        scores = evaluate(truth, pred, LABELS)
        row["average"] = {"ua": scores["ua"], "wa": scores["wa"], "macro_f1": scores["macro_f1"],
                          "validation_ua": evaluate(val_truth, np.mean(val_probs, 0).argmax(1), LABELS)["ua"],
                          "ua_by_gender": group_ua(test_items, truth, pred, "gender")}
        print(json.dumps(row))
        folds.append(row)
    summary = {name: {key: round(float(np.mean([f[name][key] for f in folds])), 4) for key in ("ua", "validation_ua")}
               for name in (*RECIPES, "average")}
    summary["average"]["ua_std"] = round(float(np.std([f["average"]["ua"] for f in folds], ddof=1)), 4)
    for key in ("wa", "macro_f1"):
        summary["average"][key] = round(float(np.mean([f["average"][key] for f in folds])), 4)
    summary["average"]["ua_by_gender"] = {g: round(float(np.mean([f["average"]["ua_by_gender"][g] for f in folds
                                                                   if g in f["average"]["ua_by_gender"]])), 4)
                                          for g in ("female", "male")}
    (OUT / "average.json").write_text(json.dumps({"summary": summary, "folds": folds}, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
