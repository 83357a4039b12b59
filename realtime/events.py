"""Pipeline events: also the JSONL schema (one object per line, times in stream seconds).

Each event serialises as ``{"type": ..., <its fields in order>}``, so the field
order below *is* the documented contract.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar


def seconds(samples: int, sample_rate: int) -> float:
    return round(samples / sample_rate, 3)


def probs_by_label(labels: tuple[str, ...], probs: Any) -> dict[str, float]:
    return {label: round(float(p), 4) for label, p in zip(labels, probs)}


class _Serialisable:
    TYPE: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, **asdict(self)}  # type: ignore[call-overload]


@dataclass(frozen=True)
class UtteranceStart(_Serialisable):
    TYPE: ClassVar[str] = "utterance_start"
    utterance: int
    t: float


@dataclass(frozen=True)
class _Result(_Serialisable):
    """A labelled span of an utterance: the fields windows and final results share."""

    utterance: int
    t_start: float
    t_end: float
    label: str
    confidence: float
    probs: dict[str, float]


@dataclass(frozen=True)
class WindowResult(_Result):
    """An interim (or the final) window's classification."""

    TYPE: ClassVar[str] = "window"
    compute_ms: float


@dataclass(frozen=True)
class UtteranceEnd(_Result):
    """An utterance's final label; ``latency_ms`` runs from the end of speech to this result."""

    TYPE: ClassVar[str] = "utterance_end"
    latency_ms: float


@dataclass(frozen=True)
class Summary(_Serialisable):
    TYPE: ClassVar[str] = "summary"
    utterances: int
    duration_s: float
    labels: dict[str, int]
    dropped_frames: int
    skipped_windows: int = 0
    """Interim windows not classified because classification fell behind real time."""


Event = UtteranceStart | WindowResult | UtteranceEnd | Summary
