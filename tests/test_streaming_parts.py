"""Ring buffer, windowing and aggregation: the streaming parts below the segmenter."""
from __future__ import annotations

import numpy as np
import pytest

from emovox.realtime.aggregate import UNCERTAIN, Aggregator, label_of
from emovox.realtime.audio import Resampler, to_mono
from emovox.realtime.ringbuffer import RingBuffer
from emovox.realtime.settings import WindowSettings
from emovox.realtime.windowing import Windower, covering_windows, fit_to_window


def test_ring_buffer_reads_back_exactly_what_was_written() -> None:
    ring = RingBuffer(1000)
    stream = np.arange(5000, dtype=np.float32)
    for chunk in np.array_split(stream, 37):
        ring.write(chunk)
    assert ring.total == 5000 and ring.oldest == 4000
    np.testing.assert_array_equal(ring.read(4000, 5000), stream[4000:])
    np.testing.assert_array_equal(ring.read(4500, 4700), stream[4500:4700])
    with pytest.raises(IndexError):
        ring.read(3999, 4100)
    ring.write(np.arange(2500, dtype=np.float32))  # larger than the capacity: only the tail is kept
    assert ring.total == 7500
    np.testing.assert_array_equal(ring.read(6500, 7500), np.arange(1500, 2500, dtype=np.float32))


def test_fit_to_window_centres_short_and_keeps_the_end_of_long() -> None:
    short = fit_to_window(np.ones(10, dtype=np.float32), 20)
    assert short.tolist() == [0] * 5 + [1] * 10 + [0] * 5
    long = fit_to_window(np.arange(30, dtype=np.float32), 20)
    assert long.tolist() == list(range(10, 30))


def test_covering_windows() -> None:
    settings = WindowSettings(window_s=2.5, hop_s=1.0)
    assert covering_windows(16000, settings) == [(0, 16000)]
    assert covering_windows(40000, settings) == [(0, 40000)]
    assert covering_windows(70000, settings) == [(8000, 48000), (24000, 64000), (30000, 70000)]


def test_windower_matches_covering_windows_offline() -> None:
    settings = WindowSettings(window_s=2.5, hop_s=1.0)
    ring = RingBuffer(200000)
    ring.write(np.arange(100000, dtype=np.float32))
    windower = Windower(settings, ring)
    windower.start(audio_start=1000)
    interim = windower.advance(71000)
    final = windower.end(71000)
    counted = [(w.start - 1000, w.end - 1000) for w in interim + final if w.full or w.final]
    assert counted == covering_windows(70000, settings)
    assert [w.full for w in interim] == [False, False, True, True]
    assert final[0].final and final[0].audio[-1] == 70999.0


def test_aggregator_counts_only_covering_windows() -> None:
    agg = Aggregator(2)
    agg.add(end=16000, full=False, final=False, probs=np.array([1.0, 0.0]))  # padded interim
    agg.add(end=40000, full=True, final=False, probs=np.array([0.2, 0.8]))
    agg.add(end=56000, full=True, final=False, probs=np.array([1.0, 0.0]))  # past the end: hangover
    agg.add(end=50000, full=True, final=True, probs=np.array([0.4, 0.6]))
    np.testing.assert_allclose(agg.finish(utterance_end=50000), [0.3, 0.7])


def test_uncertain_below_threshold() -> None:
    labels = ("a", "b", "c")
    assert label_of(labels, np.array([0.2, 0.5, 0.3]), 0.4) == ("b", 0.5)
    assert label_of(labels, np.array([0.3, 0.35, 0.35]), 0.4)[0] == UNCERTAIN


def test_to_mono_averages_and_cleans() -> None:
    block = np.array([[1.0, 0.0], [np.nan, 0.5], [np.inf, 1.0]], dtype=np.float32)
    assert to_mono(block).tolist() == [0.5, 0.0, 0.0]


def test_streaming_resampler_is_independent_of_block_size() -> None:
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(48000 * 2).astype(np.float32) * 0.1

    def run(block: int) -> np.ndarray:
        resampler = Resampler(48000)
        parts = [resampler.process(audio[i:i + block]) for i in range(0, len(audio), block)]
        return np.concatenate(parts + [resampler.process(np.zeros(0, np.float32), last=True)])

    a, b = run(480), run(4096)
    assert abs(len(a) - 32000) <= 1 and len(a) == len(b)
    np.testing.assert_allclose(a, b, atol=1e-6)
