"""Experiments #26, #27, #35 and #37: fold models of several recipes averaged (per-file probabilities, each model
at its own fitted temperature, equal weights), scored like `ser-train cv` scores one model.

Ad hoc: it reads the fold checkpoints and evaluations that `ser-train cv` cached under
.cache/features (not committed), so only a checkout that holds them can rerun it:

    .venv/bin/python benchmarks/results/experiments/average_folds.py 23,24 benchmarks/results/experiments/average-23-24
    .venv/bin/python benchmarks/results/experiments/average_folds.py 10,23,24 benchmarks/results/experiments/average-10-23-24
    .venv/bin/python benchmarks/results/experiments/average_folds.py 10s1,24s1 benchmarks/results/experiments/average-10-24-seed1
    .venv/bin/python benchmarks/results/experiments/average_folds.py 10s2,24s2 benchmarks/results/experiments/average-10-24-seed2

A third argument limits the folds (e.g. 1,2), for a run whose other folds are not trained yet.
"""
from __future__ import annotations

import itertools
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from emovox.train import folds as emobox
from emovox.train.calibration import utterance_probs
from emovox.train.corpora import LABELS, Utterance, load_corpora, read_audio
from emovox.train.crossval import EVALUATION_VERSION, group_ua
from emovox.train.fit import backbone_logits, new_backbone
from emovox.train.metrics import evaluate
from emovox.train.model import LogMel
from emovox.train.recipe import TEACHERS, Corpus, Recipe, checkpoint_key, load_corpus, recording_windows

CACHE = Path(".cache/features")
MEMBERS_EVALUATION_VERSION = 3
"""The evaluation code version the members' folds were scored with (``crossval.EVALUATION_VERSION`` then)."""
MEMBERS = {  # experiment: (its recipe in recipe.TEACHERS, fold -> checkpoint key). Fold models trained
    # before a later edit of the training code's bytes changed their keys: #23 and #24 found by each
    # cached evaluation's test UA, phone-line UA and date; #10 as retrained for #27 (session 14)
    "10": ("default",
           {1: "3325a7aaac1762de", 2: "7f8aecfe7fda283c", 3: "2fb4dc91184a7e89",
            4: "edef30105f98dbe8", 5: "3fd9bbca0a86294b", 6: "c52347cd1cf17ad4"}),
    "23": ("phone-noise",
           {1: "058b1f6e67f52b4b", 2: "479de66d96efe87d", 3: "c2222b257c3bce3e",
            4: "1b77b930e8501f2a", 5: "2a3149981cc60172", 6: "cfcec14e233f8c16"}),
    "24": ("window-mean",
           {1: "a297a632847c1e83", 2: "60f9e2fb43db409f", 3: "68d0e867c5307714",
            4: "48c6be06e8474424", 5: "381f0c7767c66ac6", 6: "5122d6f25b6c15d7"}),
}


FRESH = {"10s1": ("default", 1), "24s1": ("window-mean", 1), "10s2": ("default", 2), "24s2": ("window-mean", 2)}
"""Experiments #35's and #37's members: (recipe in recipe.TEACHERS, seed), trained by the current training
code, so found by the key `ser-train cv --seed N [--window-mean]` gives them."""


def member_preset(name: str) -> str:
    return (MEMBERS[name] if name in MEMBERS else FRESH[name])[0]


def member_key(name: str, fold: int, items: list[Utterance] | None) -> tuple[str, int]:
    """(checkpoint key, evaluation version) of a member's fold model; ``items`` for a FRESH one."""
    if name in MEMBERS:
        return MEMBERS[name][1][fold], MEMBERS_EVALUATION_VERSION
    preset, seed = FRESH[name]
    recipe = Recipe(train=replace(TEACHERS[preset], seed=seed))
    train_idx, _, _ = emobox.split_with_validation(items, fold)
    return checkpoint_key(recipe, items, recipe.trainable(items, train_idx)), EVALUATION_VERSION


def load_member(name: str, fold: int, recipe: Recipe,
                items: list[Utterance] | None = None) -> tuple[torch.nn.Module, dict]:
    """A member's fold model, and the evaluation `ser-train cv` cached for it."""
    key, version = member_key(name, fold, items)
    cached = json.loads((CACHE / "evaluations" / f"fold{fold}-v{version}-{key}.json").read_text())
    backbone = new_backbone(len(LABELS), TEACHERS[member_preset(name)], recipe.frontend)
    backbone.load_state_dict(torch.load(CACHE / "checkpoints" / f"backbone-{key}.pt"))
    return backbone.eval(), cached


@dataclass
class FoldData:
    """What scoring a fold's models needs: the validation actors' cached windows, and the test actors'
    recordings cut and featurized as `ser-train cv` scores them."""

    val_idx: list[int]
    val_logmel: np.ndarray
    val_owner: np.ndarray
    val_truth: np.ndarray
    test_items: list[Utterance]
    truth: np.ndarray
    test_logmel: np.ndarray
    owner: np.ndarray

    @classmethod
    def of(cls, corpus: Corpus, fold: int, recipe: Recipe) -> FoldData:
        _, val_idx, test_idx = emobox.split_with_validation(corpus.items, fold)
        val_logmel, _, val_owner = corpus.windows_of(val_idx)
        test_items = [corpus.items[i] for i in test_idx]
        windows, owner = recording_windows([read_audio(u.path) for u in test_items], recipe)
        with torch.no_grad():
            test_logmel = LogMel(recipe.frontend)(torch.from_numpy(windows)).numpy()
        return cls(val_idx, val_logmel, val_owner, np.array([corpus.items[i].label_index for i in val_idx]),
                   test_items, np.array([u.label_index for u in test_items]), test_logmel, owner)


def fold_means(rows: list[dict], metrics) -> dict[str, float]:
    """Each metric's mean over the per-fold result rows, rounded as the results files are written."""
    return {m: round(float(np.mean([row[m] for row in rows])), 4) for m in metrics}


def scores(truth: np.ndarray, probs: np.ndarray, val_truth: np.ndarray, val_probs: np.ndarray) -> dict:
    test = evaluate(truth, probs.argmax(1), LABELS)
    return {"ua": test["ua"], "wa": test["wa"], "macro_f1": test["macro_f1"],
            "validation_ua": evaluate(val_truth, val_probs.argmax(1), LABELS)["ua"]}


def main(names: list[str], out: Path, fold_numbers: list[int]) -> None:
    torch.set_num_threads(1)
    recipe = Recipe()
    corpus = load_corpus(load_corpora(Path("../shared/data")), recipe, CACHE, print)
    groups = [combo for size in range(2, len(names) + 1) for combo in itertools.combinations(names, size)]
    folds = []
    for fold in fold_numbers:
        f = FoldData.of(corpus, fold, recipe)
        val_logmel, val_owner, val_truth, val_idx = f.val_logmel, f.val_owner, f.val_truth, f.val_idx
        test_items, truth, test_logmel, owner = f.test_items, f.truth, f.test_logmel, f.owner
        row: dict = {"fold": fold}
        probs = {}
        for name in names:
            backbone, cached = load_member(name, fold, recipe, corpus.items)
            t = cached["temperature"]
            probs[name] = (utterance_probs(backbone_logits(backbone, test_logmel), owner, len(test_items), t),
                           utterance_probs(backbone_logits(backbone, val_logmel), val_owner, len(val_idx), t))
            row[name] = scores(truth, probs[name][0], val_truth, probs[name][1])
            # the right checkpoint, scored as `ser-train cv` scored it
            assert row[name]["ua"] == cached["ua"], (name, fold, row[name]["ua"], cached["ua"])
            assert round(row[name]["validation_ua"], 4) == cached["validation_ua"], (name, fold)
        for group in groups:
            test_p = np.mean([probs[n][0] for n in group], 0)
            row["+".join(group)] = {**scores(truth, test_p, val_truth, np.mean([probs[n][1] for n in group], 0)),
                                    "ua_by_gender": group_ua(test_items, truth, test_p.argmax(1), "gender")}
        print(json.dumps(row))
        folds.append(row)
    summary = {}
    for key in [*names, *("+".join(g) for g in groups)]:
        summary[key] = fold_means([f[key] for f in folds], ("ua", "wa", "macro_f1", "validation_ua"))
        summary[key]["ua_std"] = (round(float(np.std([f[key]["ua"] for f in folds], ddof=1)), 4)
                                  if len(folds) > 1 else 0.0)  # one fold has no spread
    for key in ("+".join(g) for g in groups):
        summary[key]["ua_by_gender"] = {g: round(float(np.mean([f[key]["ua_by_gender"][g] for f in folds
                                                                 if g in f[key]["ua_by_gender"]])), 4)
                                        for g in ("female", "male")}
    out.mkdir(parents=True, exist_ok=True)
    (out / "average.json").write_text(json.dumps({"members": names, "folds_run": fold_numbers, "summary": summary,
                                                  "folds": folds}, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main(sys.argv[1].split(","), Path(sys.argv[2]), [int(f) for f in (sys.argv[3:] or ["1,2,3,4,5,6"])[0].split(",")])
