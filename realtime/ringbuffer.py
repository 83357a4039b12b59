"""A fixed-capacity history of the 16 kHz stream, addressed by absolute sample index."""
from __future__ import annotations

import numpy as np


class RingBuffer:
    """Keeps the last ``capacity`` samples; reads by absolute stream position.

    The segmenter decides on frames a few hundred ms after they arrive, and the
    windower then needs audio from before that decision (pre-roll, the last
    2.5 s): one bounded history serves both, so memory stays flat for any
    stream length.
    """

    def __init__(self, capacity: int) -> None:
        self._data = np.zeros(capacity, dtype=np.float32)
        self.capacity = capacity
        self.total = 0
        """Samples written since the start (or the last reset)."""

    def reset(self) -> None:
        self.total = 0

    @property
    def oldest(self) -> int:
        """Absolute index of the oldest sample still held."""
        return max(0, self.total - self.capacity)

    def write(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, dtype=np.float32)
        if len(samples) > self.capacity:  # only the tail fits
            self.total += len(samples) - self.capacity
            samples = samples[-self.capacity:]
        start = self.total % self.capacity
        first = min(len(samples), self.capacity - start)
        self._data[start:start + first] = samples[:first]
        self._data[:len(samples) - first] = samples[first:]
        self.total += len(samples)

    def read(self, start: int, end: int) -> np.ndarray:
        """Samples [start, end) of the stream; both must still be held."""
        if not self.oldest <= start <= end <= self.total:
            raise IndexError(f"samples {start}..{end} not held (holding {self.oldest}..{self.total})")
        first, last = start % self.capacity, end % self.capacity
        if end - start == 0:
            return np.zeros(0, dtype=np.float32)
        if first < last:
            return self._data[first:last].copy()
        return np.concatenate([self._data[first:], self._data[:last]])
