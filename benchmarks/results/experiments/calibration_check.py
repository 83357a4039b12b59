"""Experiment #36: is the temperature fitted on 4 validation actors sound on the test actors?

A 10-bin ECE on one fold's 240 test files is noisy: even a perfectly calibrated model shows some ECE
from sampling alone. So each of the 18 cached fold models (#10 retrained, #23, #24) is scored on its
test actors raw and at its fitted T with the negative log-likelihood (a proper score, and the
quantity T is fitted to), the Brier score and the ECE, per fold and pooled over the 6 folds; beside
every ECE stands its sampling floor: the mean ECE of seeded draws in which each file is right with
the probability its confidence states.

Ad hoc, like `average_folds.py`: it reads fold checkpoints that `ser-train cv` cached under
.cache/features (not committed), so only a checkout that holds them can rerun it:

    .venv/bin/python benchmarks/results/experiments/calibration_check.py benchmarks/results/experiments/calibration-check
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from average_folds import CACHE, MEMBERS, FoldData, fold_means, load_member
from emovox.train import folds as emobox
from emovox.train.calibration import expected_calibration_error, negative_log_likelihood, utterance_probs
from emovox.train.corpora import LABELS, load_corpora
from emovox.train.fit import backbone_logits
from emovox.train.metrics import evaluate
from emovox.train.recipe import Recipe, load_corpus

FLOOR_DRAWS = 200


def brier(probs: np.ndarray, truth: np.ndarray) -> float:
    """Mean squared distance between the probability vector and the one-hot truth."""
    return float(((probs - np.eye(probs.shape[1])[truth]) ** 2).sum(axis=1).mean())


def ece_floor(probs: np.ndarray, seed: int) -> float:
    """Mean ECE of a model exactly as confident as this one and perfectly calibrated, on as many files.

    Each draw keeps the probabilities and redraws the truth: the top class is right with the
    probability it states, otherwise the truth is another class (which one does not move the ECE).
    """
    rng = np.random.default_rng(seed)
    top = probs.argmax(1)
    other = (top + 1) % probs.shape[1]
    draws = [expected_calibration_error(probs, np.where(rng.random(len(probs)) < probs.max(1), top, other))
             for _ in range(FLOOR_DRAWS)]
    return float(np.mean(draws))


def calibration_scores(probs: np.ndarray, truth: np.ndarray, seed: int) -> dict:
    return {"nll": round(negative_log_likelihood(probs, truth), 4), "brier": round(brier(probs, truth), 4),
            "ece": round(expected_calibration_error(probs, truth), 4), "ece_floor": round(ece_floor(probs, seed), 4)}


def main(out: Path) -> None:
    torch.set_num_threads(1)
    recipe = Recipe()
    corpus = load_corpus(load_corpora(Path("../shared/data")), recipe, CACHE, print)
    names = list(MEMBERS)
    folds, truths, pooled = [], [], {name: {"raw": [], "tempered": []} for name in names}
    for fold in emobox.EMOBOX_TEST_ACTORS:
        f = FoldData.of(corpus, fold, recipe)
        row: dict = {"fold": fold}
        truths.append(f.truth)
        for name in names:
            backbone, cached = load_member(name, fold, recipe)
            t = cached["temperature"]
            logits = backbone_logits(backbone, f.test_logmel)
            raw = utterance_probs(logits, f.owner, len(f.test_items))
            tempered = utterance_probs(logits, f.owner, len(f.test_items), t)
            # the right checkpoint, scored as `ser-train cv` scored it
            assert round(evaluate(f.truth, tempered.argmax(1), LABELS)["ua"], 4) == round(cached["ua"], 4)
            # the ECE to within a file's confidence moving across a bin edge (thread counts move last digits)
            assert abs(expected_calibration_error(tempered, f.truth) - cached["ece_after"]) < 5e-3, (name, fold)
            row[name] = {"temperature": t, "raw": calibration_scores(raw, f.truth, fold),
                         "tempered": calibration_scores(tempered, f.truth, fold)}
            pooled[name]["raw"].append(raw)
            pooled[name]["tempered"].append(tempered)
        print(json.dumps(row), flush=True)
        folds.append(row)
    summary, truth = {}, np.concatenate(truths)
    for name in names:
        summary[name] = {
            "pooled": {variant: calibration_scores(np.concatenate(pooled[name][variant]), truth, 0)
                       for variant in ("raw", "tempered")},
            "fold_mean": {variant: fold_means([f[name][variant] for f in folds], folds[0][name][variant])
                          for variant in ("raw", "tempered")},
            "nll_lower_with_t_on_folds": sum(f[name]["tempered"]["nll"] < f[name]["raw"]["nll"] for f in folds)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration_check.json").write_text(json.dumps({"members": names, "floor_draws": FLOOR_DRAWS,
                                                            "summary": summary, "folds": folds}, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
