"""Utterance segmentation with webrtcvad: a padded trigger/release state machine."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import webrtcvad

from emovox.realtime.settings import SAMPLE_RATE, VadSettings


@dataclass(frozen=True)
class SpeechStart:
    """Speech began at ``onset`` (first voiced frame); audio from ``audio_start`` includes the pre-roll."""

    onset: int
    audio_start: int


@dataclass(frozen=True)
class SpeechEnd:
    """Speech ended at ``end`` (after the last voiced frame); known only at ``decided_at``."""

    end: int
    decided_at: int


SegmentEvent = SpeechStart | SpeechEnd


def to_pcm16(frame: np.ndarray) -> bytes:
    """float32 [-1, 1] -> the little-endian int16 bytes webrtcvad reads."""
    return (np.clip(frame, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class Segmenter:
    """Frame-by-frame speech/non-speech decisions with hysteresis.

    Not triggered: when ``trigger_ratio`` of the last ``ring_frames`` frames are
    voiced, speech starts at the first voiced frame of that ring. Triggered:
    when ``release_ratio`` of them are unvoiced, speech ends after the last
    voiced frame. Positions are absolute sample indices of the 16 kHz stream.
    """

    def __init__(self, settings: VadSettings) -> None:
        if settings.frame_ms not in (10, 20, 30):
            raise ValueError("webrtcvad frames must be 10, 20 or 30 ms")
        self.settings = settings
        self._vad = webrtcvad.Vad(settings.mode)
        self.reset()

    def reset(self) -> None:
        self._ring: deque[tuple[int, bool]] = deque(maxlen=self.settings.ring_frames)
        self._position = 0
        self._triggered = False
        self._last_voiced_end = 0
        self._previous_end = 0

    @property
    def in_speech(self) -> bool:
        return self._triggered

    def process(self, frame: np.ndarray) -> list[SegmentEvent]:
        """Feed exactly one frame; returns the start/end it caused, if any."""
        if len(frame) != self.settings.frame_samples:
            raise ValueError(f"expected {self.settings.frame_samples} samples, got {len(frame)}")
        start = self._position
        self._position += len(frame)
        voiced = self._vad.is_speech(to_pcm16(frame), SAMPLE_RATE)
        self._ring.append((start, voiced))
        if voiced:
            self._last_voiced_end = self._position
        needed = self.settings.ring_frames
        if not self._triggered:
            voiced_starts = [s for s, v in self._ring if v]
            if len(voiced_starts) >= self.settings.trigger_ratio * needed:
                self._triggered = True
                self._ring.clear()
                onset = voiced_starts[0]
                audio_start = max(onset - self.settings.preroll_samples, self._previous_end)
                return [SpeechStart(onset, audio_start)]
            return []
        unvoiced = sum(1 for _, v in self._ring if not v)
        if unvoiced >= self.settings.release_ratio * needed:
            return [self._end()]
        return []

    def flush(self) -> list[SegmentEvent]:
        """End of stream: close an open utterance."""
        return [self._end()] if self._triggered else []

    def _end(self) -> SpeechEnd:
        self._triggered = False
        self._ring.clear()
        self._previous_end = self._last_voiced_end
        return SpeechEnd(self._last_voiced_end, self._position)


def segment_clip(audio: np.ndarray, settings: VadSettings) -> list[SegmentEvent]:
    """Every start/end decision for a whole 16 kHz clip, the open utterance closed at its end."""
    segmenter, frame = Segmenter(settings), settings.frame_samples
    events = [e for i in range(0, len(audio) - frame + 1, frame) for e in segmenter.process(audio[i:i + frame])]
    return events + segmenter.flush()


def speech_span(audio: np.ndarray, settings: VadSettings) -> tuple[int, int]:
    """From the first utterance's audio start (pre-roll included) to the last one's end;
    the whole clip if no speech is found. How offline tools crop a one-sentence file."""
    events = segment_clip(audio, settings)
    starts = [e.audio_start for e in events if isinstance(e, SpeechStart)]
    ends = [e.end for e in events if isinstance(e, SpeechEnd)]
    if not starts or ends[-1] <= starts[0]:
        return 0, len(audio)
    return starts[0], ends[-1]
