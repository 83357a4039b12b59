"""Experiment #28: point `ser-train cv --distill-from default,phone-noise,window-mean` at the fold
models that #27 averaged, instead of training the 18 teachers again (about 6 hours on 2 cores).

Their checkpoints were trained by older bytes of the training code (same settings, same files; the
code changed since only by options that are off for them and by docstrings), so the current code
gives those recipes new checkpoint keys. For each fold and teacher this links the new key's file to
the old checkpoint, after checking that the old checkpoint still scores its fold's validation actors
as its cached evaluation says. The check proves the checkpoint is the one that scored that
evaluation, which the members' table in `average_folds.py` ties to its recipe; `phone` and
`phone-noise` share one network, so no score could tell them apart by itself.

A side effect, until the next edit of the training code changes every key again: a plain
`ser-train cv` of `default`, `window-mean` or `phone-noise` reuses these checkpoints too.

    .venv/bin/python benchmarks/results/experiments/link_teachers.py
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from average_folds import CACHE, MEMBERS, load_member
from emovox.train import folds as emobox
from emovox.train.calibration import utterance_probs
from emovox.train.corpora import LABELS, load_corpora
from emovox.train.fit import backbone_logits
from emovox.train.metrics import evaluate
from emovox.train.recipe import TEACHERS, Recipe, checkpoint_key, load_corpus


def main() -> None:
    torch.set_num_threads(2)
    recipe = Recipe()
    corpus = load_corpus(load_corpora(Path("../shared/data")), recipe, CACHE, print)
    for fold in emobox.EMOBOX_TEST_ACTORS:
        train_idx, val_idx, _ = emobox.split_with_validation(corpus.items, fold)
        val_logmel, _, val_owner = corpus.windows_of(val_idx)
        val_truth = np.array([corpus.items[i].label_index for i in val_idx])
        for member, (teacher, keys) in MEMBERS.items():
            old = keys[fold]
            backbone, cached = load_member(member, fold, recipe)
            probs = utterance_probs(backbone_logits(backbone, val_logmel), val_owner, len(val_idx),
                                    cached["temperature"])
            val_ua = round(evaluate(val_truth, probs.argmax(1), LABELS)["ua"], 4)
            if val_ua != cached["validation_ua"]:
                raise SystemExit(f"fold {fold}, #{member}: validation UA {val_ua}, its evaluation says "
                                 f"{cached['validation_ua']}: not the checkpoint that was scored")
            key = checkpoint_key(replace(recipe, train=TEACHERS[teacher]), corpus.items, train_idx)
            link = CACHE / "checkpoints" / f"backbone-{key}.pt"
            if link.is_symlink() and link.readlink() == Path(f"backbone-{old}.pt"):
                done = "already linked"
            elif link.exists() or link.is_symlink():
                raise SystemExit(f"{link} exists and is not a link to backbone-{old}.pt: left as it is")
            else:
                link.symlink_to(f"backbone-{old}.pt")
                done = "linked"
            print(f"fold {fold}: {teacher} (#{member}) validation UA {val_ua}: {link.name} {done}")


if __name__ == "__main__":
    main()
