"""Settings, as frozen dataclasses built once from the command line."""
from __future__ import annotations

from dataclasses import dataclass, field

SAMPLE_RATE = 16000  # the pipeline's rate after resampling; webrtcvad and the model expect it


@dataclass(frozen=True)
class VadSettings:
    """Utterance segmentation (the py-webrtcvad ``vad_collector`` recipe)."""

    mode: int = 2
    """webrtcvad aggressiveness, 0 (keeps most) to 3 (drops most non-speech)."""
    frame_ms: int = 30
    """Frame length given to webrtcvad: 10, 20 or 30 ms."""
    padding_ms: int = 300
    """Length of the sliding decision ring; also the hangover before speech ends."""
    trigger_ratio: float = 0.9
    """Share of voiced frames in the ring that starts an utterance."""
    release_ratio: float = 0.9
    """Share of unvoiced frames in the ring that ends it."""
    preroll_ms: int = 200
    """Audio kept before the first voiced frame so word onsets reach the model."""

    @property
    def frame_samples(self) -> int:
        return SAMPLE_RATE * self.frame_ms // 1000

    @property
    def ring_frames(self) -> int:
        return max(1, self.padding_ms // self.frame_ms)

    @property
    def preroll_samples(self) -> int:
        return SAMPLE_RATE * self.preroll_ms // 1000


@dataclass(frozen=True)
class WindowSettings:
    """How utterances are cut into model windows."""

    window_s: float = 2.5
    """Model input length; must match the model's metadata."""
    hop_s: float = 1.0
    """Interval between interim results while an utterance goes on."""

    @property
    def window_samples(self) -> int:
        return round(self.window_s * SAMPLE_RATE)

    @property
    def hop_samples(self) -> int:
        return round(self.hop_s * SAMPLE_RATE)


@dataclass(frozen=True)
class PipelineSettings:
    """Everything below the audio source."""

    vad: VadSettings = field(default_factory=VadSettings)
    window: WindowSettings = field(default_factory=WindowSettings)
    min_confidence: float = 0.3
    """Below this confidence an utterance is labelled "uncertain"."""
