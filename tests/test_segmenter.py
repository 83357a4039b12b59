"""The webrtcvad segmenter on real speech: golden times, and its state machine."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from emovox.realtime.settings import VadSettings
from emovox.realtime.vad import Segmenter, SpeechEnd, SpeechStart, segment_clip, speech_span
from tests.conftest import ravdess

# Reference speech spans, determined once from the energy envelope (25 ms frames,
# 10 ms hop, threshold 40 dB below the file's loudest frame), independently of webrtcvad.
GOLDEN = {
    "03-01-04-01-02-01-02": (1.00, 2.79),
    "03-01-02-01-02-01-17": (1.01, 2.69),
}


def segment(audio: np.ndarray) -> list:
    return segment_clip(audio, VadSettings())


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_utterance_times(name: str) -> None:
    audio, rate = sf.read(str(ravdess(name)), dtype="float32")
    events = segment(audio)
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd]
    start, end = GOLDEN[name]
    assert events[0].onset / rate == pytest.approx(start, abs=0.1)
    assert events[1].end / rate == pytest.approx(end, abs=0.1)


def test_preroll_reaches_back_before_the_onset() -> None:
    audio, rate = sf.read(str(ravdess("03-01-04-01-02-01-02")), dtype="float32")
    start = segment(audio)[0]
    assert start.onset - start.audio_start == VadSettings().preroll_samples


def test_release_waits_for_the_hangover() -> None:
    audio, rate = sf.read(str(ravdess("03-01-04-01-02-01-02")), dtype="float32")
    end = segment(audio)[1]
    hangover_s = (end.decided_at - end.end) / rate
    assert 0.27 <= hangover_s <= 0.33  # 9 of 10 frames of 30 ms unvoiced


def test_silence_gives_nothing() -> None:
    assert segment(np.zeros(16000 * 5, dtype=np.float32)) == []


def test_stream_ending_mid_speech_closes_the_utterance() -> None:
    audio, rate = sf.read(str(ravdess("03-01-04-01-02-01-02")), dtype="float32")
    events = segment(audio[: int(2.0 * rate)])
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd]
    assert events[1].end / rate == pytest.approx(2.0, abs=0.05)


def test_rejects_a_wrong_frame_size() -> None:
    with pytest.raises(ValueError):
        Segmenter(VadSettings()).process(np.zeros(100, dtype=np.float32))


def test_speech_span_crops_a_sentence_with_its_preroll() -> None:
    audio, rate = sf.read(str(ravdess("03-01-04-01-02-01-02")), dtype="float32")
    start, end = speech_span(audio, VadSettings())
    assert start / rate == pytest.approx(1.00 - 0.2, abs=0.1) and end / rate == pytest.approx(2.79, abs=0.1)
    assert speech_span(np.zeros(16000, np.float32), VadSettings()) == (0, 16000)
