"""Pipeline events: also the JSONL schema (one object per line, times in stream seconds)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def seconds(samples: int, sample_rate: int) -> float:
    return round(samples / sample_rate, 3)


def probs_by_label(labels: tuple[str, ...], probs: Any) -> dict[str, float]:
    return {label: round(float(p), 4) for label, p in zip(labels, probs)}


@dataclass(frozen=True)
class UtteranceStart:
    utterance: int
    t: float

    def to_dict(self) -> dict[str, Any]:
        return {"type": "utterance_start", "utterance": self.utterance, "t": self.t}


@dataclass(frozen=True)
class WindowResult:
    """An interim (or the final) window's classification."""

    utterance: int
    t_start: float
    t_end: float
    label: str
    confidence: float
    probs: dict[str, float]
    compute_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {"type": "window", "utterance": self.utterance, "t_start": self.t_start,
                "t_end": self.t_end, "label": self.label, "confidence": self.confidence,
                "probs": self.probs, "compute_ms": self.compute_ms}


@dataclass(frozen=True)
class UtteranceEnd:
    """An utterance's final label; ``latency_ms`` runs from the end of speech to this result."""

    utterance: int
    t_start: float
    t_end: float
    label: str
    confidence: float
    probs: dict[str, float]
    latency_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {"type": "utterance_end", "utterance": self.utterance, "t_start": self.t_start,
                "t_end": self.t_end, "label": self.label, "confidence": self.confidence,
                "probs": self.probs, "latency_ms": self.latency_ms}


@dataclass(frozen=True)
class Summary:
    utterances: int
    duration_s: float
    labels: dict[str, int]
    dropped_frames: int

    def to_dict(self) -> dict[str, Any]:
        return {"type": "summary", "utterances": self.utterances, "duration_s": self.duration_s,
                "labels": self.labels, "dropped_frames": self.dropped_frames}


Event = UtteranceStart | WindowResult | UtteranceEnd | Summary
