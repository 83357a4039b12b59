"""Cutting utterances into fixed-length model windows."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emovox.realtime.ringbuffer import RingBuffer
from emovox.realtime.settings import WindowSettings


@dataclass(frozen=True)
class Window:
    """One model input: ``audio`` is exactly ``window_samples`` long (zero-padded if needed)."""

    utterance: int
    start: int
    """Absolute sample index of the first real (unpadded) sample."""
    end: int
    final: bool
    """True for the window taken when the utterance ended."""
    full: bool
    """True when it holds a full window of real audio (no padding)."""
    audio: np.ndarray


def fit_to_window(audio: np.ndarray, window_samples: int) -> np.ndarray:
    """Centre a short clip in zeros, or keep the last ``window_samples`` of a long one.

    Training crops utterances with this same function, so the model sees the
    padding it will meet at run time.
    """
    if len(audio) >= window_samples:
        return np.ascontiguousarray(audio[len(audio) - window_samples:], dtype=np.float32)
    padded = np.zeros(window_samples, dtype=np.float32)
    left = (window_samples - len(audio)) // 2
    padded[left:left + len(audio)] = audio
    return padded


def covering_windows(n_samples: int, settings: WindowSettings) -> list[tuple[int, int]]:
    """The (start, end) spans the streaming windower classifies for a whole utterance.

    Used offline (training, evaluation) to see an utterance exactly as the
    runtime does: full windows every hop, plus one ending at the utterance end.
    """
    w, h = settings.window_samples, settings.hop_samples
    if n_samples <= w:
        return [(0, n_samples)]
    spans = [(end - w, end) for end in range(h, n_samples + 1, h) if end >= w]
    if not spans or spans[-1][1] != n_samples:
        spans.append((n_samples - w, n_samples))
    return spans


class Windower:
    """Turns speech start/end decisions plus the stream history into windows.

    While an utterance goes on, a window every hop (the latest ``window_s`` of
    it, padded while shorter); when it ends, a final window over its last
    ``window_s`` unless the latest interim window already ends there.
    """

    def __init__(self, settings: WindowSettings, history: RingBuffer) -> None:
        self.settings = settings
        self._history = history
        self.utterance = -1
        self._audio_start: int | None = None
        self._next_hop = 0
        self._last_end = -1

    def start(self, audio_start: int) -> None:
        """A new utterance whose audio (pre-roll included) begins at ``audio_start``."""
        self.utterance += 1
        self._audio_start = audio_start
        self._next_hop = audio_start + self.settings.hop_samples
        self._last_end = -1

    def advance(self, now: int) -> list[Window]:
        """Interim windows due by stream position ``now``."""
        windows = []
        while self._audio_start is not None and self._next_hop <= now:
            windows.append(self._take(self._next_hop, final=False))
            self._next_hop += self.settings.hop_samples
        return windows

    def end(self, end: int) -> list[Window]:
        """The utterance's final window, if its end is not covered yet."""
        if self._audio_start is None:
            return []
        windows = [] if self._last_end == end else [self._take(end, final=True)]
        self._audio_start = None
        return windows

    def _take(self, end: int, final: bool) -> Window:
        assert self._audio_start is not None
        start = max(self._audio_start, end - self.settings.window_samples)
        audio = self._history.read(start, end)
        self._last_end = end
        return Window(self.utterance, start, end, final,
                      full=end - start == self.settings.window_samples,
                      audio=fit_to_window(audio, self.settings.window_samples))
