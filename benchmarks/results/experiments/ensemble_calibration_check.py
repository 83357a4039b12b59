"""Experiments #40 and #41: is the shipped three's calibration sound on the test actors, pooled over the
folds, and would one temperature on the members' untempered mean do better?

#36's check for an ensemble. Each fold's three members (seed 3, #39) are scored on their test actors
as `ser-train cv` scores them, in three variants: ``raw`` (the members' untempered mean
probability), ``members`` (each at its fitted temperature, their mean at 1) and ``shipped`` (that
mean at the ensemble's own fitted temperature, what the file computes), and (#41) ``one_stage``: the
untempered mean at one temperature fitted to it on the validation actors; per fold and pooled, the
NLL, the Brier score, the ECE and its sampling floor (``calibration_check``).

Ad hoc: it reads the fold checkpoints and the ensemble's evaluations that `ser-train cv --ensemble`
cached under .cache/features (not committed), so only a checkout that holds them can rerun it:

    .venv/bin/python benchmarks/results/experiments/ensemble_calibration_check.py \\
        benchmarks/results/experiments/ensemble-calibration-check
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from average_folds import CACHE, FoldData, fold_means
from calibration_check import calibration_scores
from emovox.train import folds as emobox
from emovox.train.calibration import expected_calibration_error, fit_temperature, utterance_probs
from emovox.train.corpora import LABELS, load_corpora
from emovox.train.crossval import evaluation_cache
from emovox.train.ensemble import combined_logits
from emovox.train.fit import backbone_logits
from emovox.train.metrics import evaluate
from emovox.train.recipe import ensemble_member, load_corpus, train_on

NAMES, SEED = ("default", "noise", "window-mean"), 3
VARIANTS = ("raw", "members", "shipped", "one_stage")


def main(out: Path) -> None:
    torch.set_num_threads(1)
    recipes = [ensemble_member(name, SEED) for name in NAMES]
    corpus = load_corpus(load_corpora(Path("../shared/data")), recipes[0], CACHE, print)
    folds, truths, pooled = [], [], {variant: [] for variant in VARIANTS}
    for fold in emobox.EMOBOX_TEST_ACTORS:
        train_idx = recipes[0].trainable(corpus.items, emobox.split_with_validation(corpus.items, fold)[0])
        cached = json.loads(evaluation_cache(corpus, fold, recipes, train_idx, CACHE).read_text())
        f = FoldData.of(corpus, fold, recipes[0])
        members = [train_on(corpus, train_idx, recipe, CACHE, print) for recipe in recipes]  # cached: reloaded
        untempered, members_t = [1.0] * len(members), cached["member_temperatures"]
        val_mean = combined_logits([backbone_logits(m, f.val_logmel) for m in members], untempered)
        one_stage_t = fit_temperature(val_mean, f.val_owner, f.val_truth)
        logits = [backbone_logits(m, f.test_logmel) for m in members]
        mean, tempered_mean = combined_logits(logits, untempered), combined_logits(logits, members_t)
        n = len(f.test_items)
        probs = {"raw": utterance_probs(mean, f.owner, n),
                 "members": utterance_probs(tempered_mean, f.owner, n),
                 "shipped": utterance_probs(tempered_mean, f.owner, n, cached["temperature"]),
                 "one_stage": utterance_probs(mean, f.owner, n, one_stage_t)}
        # the right checkpoints, scored as `ser-train cv --ensemble` scored them
        assert evaluate(f.truth, probs["shipped"].argmax(1), LABELS)["ua"] == cached["ua"], fold
        for variant, field in (("raw", "ece_before"), ("shipped", "ece_after")):
            assert abs(expected_calibration_error(probs[variant], f.truth) - cached[field]) < 5e-3, (fold, variant)
        row = {"fold": fold, "temperature": cached["temperature"], "member_temperatures": members_t,
               "one_stage_temperature": round(one_stage_t, 4),
               **{variant: calibration_scores(probs[variant], f.truth, fold) for variant in VARIANTS}}
        print(json.dumps(row), flush=True)
        folds.append(row)
        truths.append(f.truth)
        for variant in VARIANTS:
            pooled[variant].append(probs[variant])
    truth = np.concatenate(truths)
    summary = {
        "pooled": {variant: calibration_scores(np.concatenate(pooled[variant]), truth, 0) for variant in VARIANTS},
        "fold_mean": {variant: fold_means([f[variant] for f in folds], folds[0][variant]) for variant in VARIANTS},
        "shipped_nll_lower_than_members_on_folds": sum(f["shipped"]["nll"] < f["members"]["nll"] for f in folds),
        "shipped_nll_lower_than_raw_on_folds": sum(f["shipped"]["nll"] < f["raw"]["nll"] for f in folds),
        "one_stage_nll_lower_than_shipped_on_folds": sum(f["one_stage"]["nll"] < f["shipped"]["nll"] for f in folds),
        "one_stage_temperature_mean": round(float(np.mean([f["one_stage_temperature"] for f in folds])), 4)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "ensemble_calibration_check.json").write_text(json.dumps(
        {"members": list(NAMES), "seed": SEED, "summary": summary, "folds": folds}, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
