"""Put a finished cross-validation's fold results back into the evaluation cache, under the names that
`ser-train cv --ensemble NAMES --seed S` (and `ser-train ship`) look them up by.

A machine that lost `.cache/` would otherwise train all 6 folds' members again (18 trainings, about 4.5
hours on 2 cores for three members) before `ser-train ship --ensemble` trains on all data. The fold results
are the committed ``ravdess_cv.json``'s ``folds``, byte for byte what `cv` cached; the names are computed
from the members' recipes, the data and the training code, so a changed recipe or training loop finds no
entry and evaluates again:

    .venv/bin/python benchmarks/results/experiments/restore_evaluations.py default,noise,window-mean 2 \\
        benchmarks/results/experiments/ensemble-10-18-24-seed2
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from emovox.train import folds as emobox
from emovox.train.corpora import load_corpora
from emovox.train.crossval import evaluation_cache
from emovox.train.features import DEFAULT_CACHE
from emovox.train.recipe import ensemble_member, load_corpus

DATA = Path("../shared/data")


def restore(names: list[str], seed: int, results: Path) -> None:
    """Write each fold of ``results/ravdess_cv.json`` where `ser-train cv --ensemble` would have cached it."""
    recipes = [ensemble_member(name, seed) for name in names]
    corpus = load_corpus(load_corpora(DATA), recipes[0], DEFAULT_CACHE, print)
    for result in json.loads((results / "ravdess_cv.json").read_text())["folds"]:
        fold_train = emobox.split_with_validation(corpus.items, result["fold"])[0]
        train_idx = recipes[0].trainable(corpus.items, fold_train)
        path = evaluation_cache(corpus, result["fold"], recipes, train_idx, DEFAULT_CACHE)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(f"fold {result['fold']}: UA {result['ua']:.3f} -> {path}")


if __name__ == "__main__":
    names_text, seed_text, results_text = sys.argv[1:]
    restore(names_text.split(","), int(seed_text), Path(results_text))
