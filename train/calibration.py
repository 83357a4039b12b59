"""Temperature scaling of the utterance probabilities, and expected calibration error.

The runtime reports the mean of its windows' softmax outputs as an utterance's
confidence, so the temperature is fitted on exactly that quantity (not on single
windows), on validation actors that neither trained the model nor are tested.
"""
from __future__ import annotations

import numpy as np

TEMPERATURE_GRID = np.exp(np.linspace(np.log(0.25), np.log(8.0), 241))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def utterance_probs(window_logits: np.ndarray, owner: np.ndarray, n_utterances: int,
                    temperature: float = 1.0) -> np.ndarray:
    """Mean of the windows' tempered softmax per utterance: what the runtime's Aggregator reports."""
    sums = np.zeros((n_utterances, window_logits.shape[1]))
    np.add.at(sums, owner, softmax(window_logits, temperature))
    return sums / np.maximum(np.bincount(owner, minlength=n_utterances), 1)[:, None]


def negative_log_likelihood(probs: np.ndarray, truth: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(truth)), truth], 1e-12, None)).mean())


def fit_temperature(window_logits: np.ndarray, owner: np.ndarray, truth: np.ndarray) -> float:
    """The temperature (grid search, 0.25-8) minimising the utterance-level NLL."""
    losses = [negative_log_likelihood(utterance_probs(window_logits, owner, len(truth), t), truth)
              for t in TEMPERATURE_GRID]
    return float(TEMPERATURE_GRID[int(np.argmin(losses))])


def expected_calibration_error(probs: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    """Top-1 confidence vs accuracy, weighted over equal-width confidence bins."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == truth
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(confidence[members].mean() - correct[members].mean())
    return float(error)
