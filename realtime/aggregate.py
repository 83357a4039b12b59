"""From window probabilities to an utterance's label and confidence."""
from __future__ import annotations

import numpy as np

UNCERTAIN = "uncertain"


def label_of(labels: tuple[str, ...], probs: np.ndarray, min_confidence: float) -> tuple[str, float]:
    """The top class and its probability; "uncertain" below ``min_confidence``."""
    best = int(np.argmax(probs))
    confidence = float(probs[best])
    return (labels[best] if confidence >= min_confidence else UNCERTAIN), confidence


class Aggregator:
    """Averages the probabilities of the windows that cover one utterance.

    Counted: full windows that end inside the utterance, and the final window.
    Interim windows that were padded (the utterance was still short) or that
    reach into the hangover after speech ended are shown live but not counted,
    so the final label is the same as classifying the utterance offline with
    ``covering_windows``.
    """

    def __init__(self, n_labels: int) -> None:
        self._n_labels = n_labels
        self.reset()

    def reset(self) -> None:
        self._window_probs: list[tuple[int, bool, bool, np.ndarray]] = []

    def add(self, end: int, full: bool, final: bool, probs: np.ndarray) -> None:
        self._window_probs.append((end, full, final, probs))

    def finish(self, utterance_end: int) -> np.ndarray:
        """Mean probabilities over the counted windows; clears for the next utterance."""
        counted = [p for end, full, final, p in self._window_probs
                   if final or (full and end <= utterance_end)]
        if not counted:  # the end was exactly on an interim window that was padded
            counted = [p for end, _, _, p in self._window_probs if end == utterance_end]
        self.reset()
        if not counted:
            return np.full(self._n_labels, 1.0 / self._n_labels, dtype=np.float32)
        return np.mean(counted, axis=0)
