"""The speaker-independent RAVDESS folds of the EmoBox benchmark (Ma et al., 2024)."""
from __future__ import annotations

from emovox.train.corpora import Utterance

EMOBOX_TEST_ACTORS: dict[int, tuple[int, ...]] = {
    1: (1, 11, 20, 21),
    2: (4, 10, 12, 14),
    3: (8, 9, 19, 23),
    4: (3, 5, 7, 24),
    5: (2, 15, 16, 18),
    6: (6, 13, 17, 22),
}


def test_speakers(fold: int) -> set[str]:
    return {f"ravdess:{actor:02d}" for actor in EMOBOX_TEST_ACTORS[fold]}


def split(items: list[Utterance], fold: int) -> tuple[list[int], list[int]]:
    """(train, test) indices into ``items``: the fold's 4 RAVDESS actors are the test set;
    everything else, the other corpora included (different speakers), may train."""
    held_out = test_speakers(fold)
    train = [i for i, u in enumerate(items) if u.speaker not in held_out]
    test = [i for i, u in enumerate(items) if u.speaker in held_out]
    return train, test


def validation_fold(fold: int) -> int:
    """The fold whose test actors serve as fold ``fold``'s validation actors (the next one, cyclically)."""
    return fold % len(EMOBOX_TEST_ACTORS) + 1


def split_with_validation(items: list[Utterance], fold: int) -> tuple[list[int], list[int], list[int]]:
    """(train, validation, test) indices: 4 RAVDESS test actors, 4 other RAVDESS actors held out of
    training to fit the temperature (and to choose settings), everything else trains."""
    held_out, validation = test_speakers(fold), test_speakers(validation_fold(fold))
    train = [i for i, u in enumerate(items) if u.speaker not in held_out and u.speaker not in validation]
    val = [i for i, u in enumerate(items) if u.speaker in validation]
    test = [i for i, u in enumerate(items) if u.speaker in held_out]
    return train, val, test
