"""Train ensemble members' fold checkpoints without evaluating them, so that several can train side by side.

`ser-train cv --ensemble A,B,C --folds N` trains its missing members one after another, then scores the
ensemble. On 2 cores two one-thread trainings side by side finish sooner, so experiments that span
sessions (#39) train the members with this script, then let `ser-train cv --ensemble` reuse the cached
checkpoints (same recipe, same files, same training code: same key) and score the fold:

    .venv/bin/python benchmarks/results/experiments/train_fold_members.py noise 3 1      # recipe, seed, fold

A fold of `all` trains the member on every file instead, as `ser-train ship --ensemble` keys it.
A fourth argument sets the threads (default 1; not part of the checkpoint's key), for a training left
alone on the machine. A trailing `--corpus-heads` trains the member as `ser-train cv --ensemble ...
--corpus-heads` does (its recipe plus per-corpus heads), and a trailing `--epochs N` as `ser-train cv --epochs N`
does (#49). With no fold it only builds the cached log-mel
front end of the five corpora, so that the first trainings side by side do not both compute it.
"""
from __future__ import annotations

import sys
from pathlib import Path

from emovox.train import folds as emobox
from emovox.train.corpora import load_corpora
from emovox.train.features import DEFAULT_CACHE
from emovox.train.recipe import SHIPPED_TRAINING, ensemble_member, load_corpus, train_on

DATA = Path("../shared/data")


def train_member(name: str, seed: int, fold: str | None, threads: int = 1, corpus_heads: bool = False,
                 epochs: int = SHIPPED_TRAINING.epochs) -> None:
    """The named recipe's checkpoint on the fold's training speakers (or on every file for `all`), keyed
    as `ser-train cv --ensemble` (or `ser-train ship --ensemble`) keys it."""
    recipe = ensemble_member(name, seed, epochs=epochs, threads=threads, corpus_heads=corpus_heads)
    corpus = load_corpus(load_corpora(DATA), recipe, DEFAULT_CACHE, print)
    if fold is None:
        return
    train_idx = (list(range(len(corpus.items))) if fold == "all"
                 else emobox.split_with_validation(corpus.items, int(fold))[0])
    train_on(corpus, recipe.trainable(corpus.items, train_idx), recipe, DEFAULT_CACHE, print)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    heads = "--corpus-heads" in arguments
    epochs = SHIPPED_TRAINING.epochs
    if "--epochs" in arguments:
        at = arguments.index("--epochs")
        epochs = int(arguments[at + 1])
        del arguments[at:at + 2]
    recipe_name, seed_text, *rest = [a for a in arguments if a != "--corpus-heads"]
    train_member(recipe_name, int(seed_text), rest[0] if rest else None, int(rest[1]) if len(rest) > 1 else 1,
                 heads, epochs)
