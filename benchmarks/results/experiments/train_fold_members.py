"""Train ensemble members' fold checkpoints without evaluating them, so that several can train side by side.

`ser-train cv --ensemble A,B,C --folds N` trains its missing members one after another, then scores the
ensemble. On 2 cores two one-thread trainings side by side finish sooner, so experiments that span
sessions (#39) train the members with this script, then let `ser-train cv --ensemble` reuse the cached
checkpoints (same recipe, same files, same training code: same key) and score the fold:

    .venv/bin/python benchmarks/results/experiments/train_fold_members.py noise 3 1      # recipe, seed, fold

A fold of `all` trains the member on every file instead, as `ser-train ship --ensemble` keys it.
A fourth argument sets the threads (default 1; not part of the checkpoint's key), for a training left
alone on the machine. A trailing `--corpus-heads` trains the member as `ser-train cv --ensemble ...
--corpus-heads` does (its recipe plus per-corpus heads), `--epochs N` as `ser-train cv --epochs N`
does (#49), and `--channels 8,16,24 --hidden 32` as `ser-train cv` does with them (#50). With no fold it
only builds the cached log-mel front end of the five corpora, so that the first trainings side by side do not
both compute it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from emovox.train import folds as emobox
from emovox.train.cli import parse_channels
from emovox.train.corpora import load_corpora
from emovox.train.features import DEFAULT_CACHE
from emovox.train.recipe import (SHIPPED_CHANNELS, SHIPPED_HIDDEN, SHIPPED_TRAINING, TEACHERS, ensemble_member,
                                 load_corpus, train_on)

DATA = Path("../shared/data")


def train_member(name: str, seed: int, fold: str | None, threads: int = 1, corpus_heads: bool = False,
                 epochs: int = SHIPPED_TRAINING.epochs, channels: tuple[int, int, int] = SHIPPED_CHANNELS,
                 hidden: int = SHIPPED_HIDDEN) -> None:
    """The named recipe's checkpoint on the fold's training speakers (or on every file for `all`), keyed
    as `ser-train cv --ensemble` (or `ser-train ship --ensemble`) keys it."""
    recipe = ensemble_member(name, seed, epochs, threads, corpus_heads, channels, hidden)
    corpus = load_corpus(load_corpora(DATA), recipe, DEFAULT_CACHE, print)
    if fold is None:
        return
    train_idx = (list(range(len(corpus.items))) if fold == "all"
                 else emobox.split_with_validation(corpus.items, int(fold))[0])
    train_on(corpus, recipe.trainable(corpus.items, train_idx), recipe, DEFAULT_CACHE, print)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Train one ensemble member's fold checkpoint.")
    parser.add_argument("recipe", choices=sorted(TEACHERS))
    parser.add_argument("seed", type=int)
    parser.add_argument("fold", nargs="?", help="1-6, or all (none: only build the feature cache)")
    parser.add_argument("threads", nargs="?", type=int, default=1)
    parser.add_argument("--corpus-heads", action="store_true")
    parser.add_argument("--epochs", type=int, default=SHIPPED_TRAINING.epochs)
    parser.add_argument("--channels", default=",".join(map(str, SHIPPED_CHANNELS)))
    parser.add_argument("--hidden", type=int, default=SHIPPED_HIDDEN)
    args = parser.parse_args()
    try:
        channels = parse_channels(args.channels)
    except ValueError as error:
        parser.error(str(error))
    train_member(args.recipe, args.seed, args.fold, args.threads, args.corpus_heads, args.epochs, channels,
                 args.hidden)
