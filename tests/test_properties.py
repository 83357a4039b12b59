"""Property tests (hypothesis): chunking, the ring buffer, and the segmenter's invariants."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from emovox.realtime.model import Classifier, load_model_info
from emovox.realtime.pipeline import Pipeline
from emovox.realtime.ringbuffer import RingBuffer
from emovox.realtime.settings import PipelineSettings, VadSettings
from emovox.realtime.vad import SpeechEnd, SpeechStart, segment_clip
from tests.conftest import THREE, ravdess


@lru_cache(maxsize=1)
def speech() -> np.ndarray:
    """Two RAVDESS utterances and a pause: real speech, short enough for many examples."""
    parts = [sf.read(str(ravdess(name)), dtype="float32")[0] for name in THREE[0][:2]]
    return np.concatenate([parts[0], np.zeros(8000, np.float32), parts[1]])


@lru_cache(maxsize=1)
def classifier() -> Classifier:
    return Classifier(load_model_info())


def run(blocks: list[int]) -> list[dict]:
    pipeline = Pipeline(classifier(), PipelineSettings())
    audio, events, offset, i = speech(), [], 0, 0
    while offset < len(audio):
        size = blocks[i % len(blocks)]
        events += pipeline.push(audio[offset:offset + size])
        offset, i = offset + size, i + 1
    events += pipeline.finish()
    return [{k: v for k, v in e.to_dict().items() if k not in ("compute_ms", "latency_ms")} for e in events]


@lru_cache(maxsize=1)
def reference() -> list[dict]:
    return run([4096])


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=20000), min_size=1, max_size=12))
def test_any_chunking_gives_the_same_events(blocks: list[int]) -> None:
    assert run(blocks) == reference()


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=500), st.lists(st.integers(min_value=0, max_value=1500), max_size=40))
def test_ring_buffer_never_loses_or_duplicates(capacity: int, writes: list[int]) -> None:
    ring = RingBuffer(capacity)
    stream = np.arange(sum(writes), dtype=np.float32)
    offset = 0
    for size in writes:
        ring.write(stream[offset:offset + size])
        offset += size
        assert ring.total == offset
        held = ring.read(ring.oldest, ring.total)
        np.testing.assert_array_equal(held, stream[ring.oldest:offset])
        assert len(held) == min(capacity, offset)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=3), st.integers(min_value=1, max_value=20),
       st.floats(min_value=0.3, max_value=1.0), st.floats(min_value=0.3, max_value=1.0),
       st.integers(min_value=0, max_value=2**32 - 1))
def test_utterances_are_ordered_and_never_overlap(mode: int, ring_frames: int, trigger: float, release: float,
                                                  seed: int) -> None:
    """Real speech with random noise bursts, any hysteresis: starts and ends alternate, spans are
    positive, each begins (pre-roll included) after the previous one ended."""
    vad = VadSettings(mode=mode, padding_ms=30 * ring_frames, trigger_ratio=trigger, release_ratio=release)
    rng = np.random.default_rng(seed)
    audio = speech().copy()
    for start in rng.integers(0, len(audio) - 4000, size=5):
        audio[start:start + 2000] += rng.standard_normal(2000).astype(np.float32) * 0.05
    events = segment_clip(audio, vad)
    previous_end, open_start = 0, None
    for event in events:
        if isinstance(event, SpeechStart):
            assert open_start is None
            assert previous_end <= event.audio_start <= event.onset
            open_start = event.onset
        else:
            assert isinstance(event, SpeechEnd) and open_start is not None
            assert open_start < event.end <= event.decided_at
            previous_end, open_start = event.end, None
    assert open_start is None
