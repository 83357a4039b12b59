"""The CNN-LSTM recipe under both protocols of the baseline table, trained on RAVDESS alone.

The seed systems' numbers come from a random split; this project's come from actor folds. The
baseline table shows the gap for the seeds; this module measures it for our own model on the same
data, so that the table compares like with like:

(a) ``random``: RAVDESS files shuffled and split 80/20 (seeds 1-6, as the baselines). The recipe
    augments on line (SpecAugment, gain), so there are no stored copies to leak; what leaks is every
    test actor's voice and the second take of each recording (RAVDESS repeats every sentence twice);
(b) ``actor``: the 6 EmoBox folds, the 4 test actors' files held out.

Each split trains the shipped recipe (no validation actors: nothing is selected or calibrated here)
and scores the test files as the runtime would (mean window probabilities per file).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from emovox.train import folds as emobox
from emovox.train.baselines import REPETITIONS, random_split, summarise_runs
from emovox.train.calibration import utterance_probs
from emovox.train.corpora import LABELS, Utterance
from emovox.train.fit import backbone_logits
from emovox.train.metrics import evaluate
from emovox.train.recipe import Log, Recipe, load_corpus, train_on

RANDOM_SPLIT_NOTE = ("The CNN-LSTM augments on line, so its random split shuffles files (no stored copies; "
                     "the actors' voices and RAVDESS's second takes still leak)")


def file_splits(items: list[Utterance], protocol: str) -> list[tuple[str, list[int], list[int]]]:
    """(name, train files, test files) for the 6 repetitions of a protocol."""
    out = []
    for k in REPETITIONS:
        if protocol == "random":
            train, test = random_split(len(items), k)
            out.append((f"seed {k}", train.tolist(), test.tolist()))
        else:
            out.append((f"fold {k}", *emobox.split(items, k)))
    return out


def cnn_lstm_protocols(items: list[Utterance], recipe: Recipe, cache_dir: Path, log: Log = print) -> dict:
    """A baseline-table entry for the CNN-LSTM recipe on ``items`` (RAVDESS): both protocols, 6 runs each.
    Checkpoints are cached like every other training run, so an interrupted run resumes."""
    if any(u.corpus != "ravdess" for u in items):
        raise ValueError("the protocol comparison trains on RAVDESS alone, like the baselines")
    corpus = load_corpus(items, recipe, cache_dir, log)
    entry: dict = {"description": "this project's CNN-LSTM recipe, trained on RAVDESS alone (as the baselines)",
                   "epochs": recipe.train.epochs, "note": RANDOM_SPLIT_NOTE}
    for protocol in ("random", "actor"):
        runs = []
        for name, train, test in file_splits(items, protocol):
            backbone = train_on(corpus, train, recipe, cache_dir, log)
            logmel, _, owner = corpus.windows_of(test)
            with torch.no_grad():
                probs = utterance_probs(backbone_logits(backbone, logmel), owner, len(test))
            scores = evaluate(np.array([items[i].label_index for i in test]), probs.argmax(1), LABELS)
            runs.append({"split": name, "train_files": len(train), "test_files": len(test),
                         **{m: round(scores[m], 4) for m in ("ua", "wa", "macro_f1")}})
            log(f"cnn_lstm {protocol} {name}: UA {scores['ua']:.3f}")
        entry[protocol] = summarise_runs(runs)
    return entry
