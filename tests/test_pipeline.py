"""The whole runtime path on real recordings, through the shipped ONNX model."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import soundfile as sf

from emovox.realtime.audio import FileSource
from emovox.realtime.model import Classifier, load_model_info
from emovox.realtime.pipeline import Pipeline
from emovox.realtime.settings import PipelineSettings, WindowSettings
from tests.conftest import Recording


@lru_cache(maxsize=1)
def classifier() -> Classifier:
    return Classifier(load_model_info())


def pipeline() -> Pipeline:
    info = classifier().info
    return Pipeline(classifier(), PipelineSettings(window=WindowSettings(window_s=info.window_s)))


def events_for(audio: np.ndarray, block: int) -> list[dict]:
    run = pipeline()
    events = []
    for offset in range(0, len(audio), block):
        events += run.push(audio[offset:offset + block])
    events += run.finish()
    return [e.to_dict() for e in events]


def without_timing(events: list[dict]) -> list[dict]:
    """Drop the wall-clock fields: compute time varies run to run, nothing else may."""
    return [{k: v for k, v in e.items() if k not in ("compute_ms", "latency_ms")} for e in events]


def test_chunking_does_not_change_events(three_utterances: Recording) -> None:
    audio, _ = sf.read(str(three_utterances.path), dtype="float32")
    reference = without_timing(events_for(audio, 160))
    assert sum(e["type"] == "utterance_end" for e in reference) == 3
    for block in (480, 1000, 4096, len(audio)):  # the sizes, and all at once
        assert without_timing(events_for(audio, block)) == reference, f"block {block}"


def test_replay_finds_each_utterance_inside_its_span(three_utterances: Recording) -> None:
    source = FileSource(three_utterances.path, realtime=False)
    run = pipeline()
    events = [e.to_dict() for block in source.blocks() for e in run.push(block)] + \
        [e.to_dict() for e in run.finish()]
    ends = [e for e in events if e["type"] == "utterance_end"]
    assert len(ends) == 3
    for end, (t0, t1) in zip(ends, three_utterances.spans):
        assert t0 - 0.5 <= end["t_start"] < end["t_end"] <= t1 + 0.5
        assert set(end["probs"]) == set(classifier().info.labels)
        assert sum(end["probs"].values()) == pytest.approx(1.0, abs=1e-3)
        assert 270 <= end["latency_ms"] < 1000  # the VAD hangover plus compute
    summary = events[-1]
    assert summary["type"] == "summary" and summary["utterances"] == 3
    assert summary["duration_s"] == pytest.approx(sf.info(str(three_utterances.path)).duration, abs=0.01)


def test_long_utterance_gets_interim_windows_then_one_final_label() -> None:
    """Three utterances run together without pauses: one long utterance, interim results every hop."""
    from tests.conftest import THREE, ravdess

    speech = np.concatenate([sf.read(str(ravdess(n)), dtype="float32")[0][15000:-15000] for n in THREE[0]])
    events = events_for(np.concatenate([np.zeros(8000, np.float32), speech, np.zeros(16000, np.float32)]), 4096)
    ends = [e for e in events if e["type"] == "utterance_end"]
    windows = [e for e in events if e["type"] == "window"]
    assert len(ends) == 1 and ends[0]["t_end"] - ends[0]["t_start"] > 4.0
    assert len(windows) >= 4
    spans = [w["t_end"] - w["t_start"] for w in windows]
    assert max(spans) == pytest.approx(2.5, abs=0.001)


def test_resampled_stereo_input_finds_the_same_utterances(three_utterances: Recording, tmp_path) -> None:
    import soxr

    audio, _ = sf.read(str(three_utterances.path), dtype="float32")
    stereo = soxr.resample(audio, 16000, 44100)
    path = tmp_path / "three_44k_stereo.flac"
    sf.write(str(path), np.stack([stereo, stereo * 0.8], axis=1), 44100)
    run = pipeline()
    events = [e.to_dict() for b in FileSource(path).blocks() for e in run.push(b)] + \
        [e.to_dict() for e in run.finish()]
    ends = [e for e in events if e["type"] == "utterance_end"]
    assert len(ends) == 3
    for end, (t0, t1) in zip(ends, three_utterances.spans):
        assert t0 - 0.5 <= end["t_start"] < end["t_end"] <= t1 + 0.5
