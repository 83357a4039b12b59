"""Event consumers. Sinks only receive events; they never call back into the pipeline."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol, TextIO

from emovox.realtime.dashboard import SessionTally
from emovox.realtime.events import Event, Summary, UtteranceEnd, UtteranceStart, WindowResult


class OutputError(Exception):
    """An output file cannot be opened or written."""


class Sink(Protocol):
    def handle(self, event: Event) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """DESIGN.md's event schema, one JSON object per line, flushed per event."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._file: TextIO = open(self.path, "w", encoding="utf-8")
        except OSError as error:
            raise OutputError(f"cannot write {self.path}: {error.strerror}") from None

    def handle(self, event: Event) -> None:
        try:
            self._file.write(json.dumps(event.to_dict()) + "\n")
            self._file.flush()
        except OSError as error:
            raise OutputError(f"writing {self.path} failed: {error.strerror}") from None

    def close(self) -> None:
        self._file.close()


def _top_classes(probs: dict[str, float], n: int = 3) -> str:
    ranked = sorted(probs.items(), key=lambda item: -item[1])[:n]
    return "  ".join(f"{label} {p:4.0%}" for label, p in ranked)


class TextSink:
    """Readable lines: one per finished utterance (and per window with ``windows=True``)."""

    def __init__(self, stream: TextIO, windows: bool = False) -> None:
        self._stream = stream
        self._windows = windows
        self._tally = SessionTally()

    def handle(self, event: Event) -> None:
        line = self._format(event)
        if line is not None:
            print(line, file=self._stream, flush=True)

    def _format(self, event: Event) -> str | None:
        if isinstance(event, UtteranceEnd):
            self._tally.add(event)
            return (f"{event.t_start:8.2f}-{event.t_end:8.2f} s  #{event.utterance:<3d} "
                    f"{event.label:<10s} {event.confidence:4.0%}   ({_top_classes(event.probs)})")
        if isinstance(event, WindowResult) and self._windows:
            return (f"{event.t_start:8.2f}-{event.t_end:8.2f} s  #{event.utterance:<3d} "
                    f"  window: {event.label:<10s} {event.confidence:4.0%}")
        if isinstance(event, UtteranceStart) and self._windows:
            return f"{event.t:8.2f}            #{event.utterance:<3d} speech starts"
        if isinstance(event, Summary):
            return self._tally.describe(event)
        return None

    def close(self) -> None:
        self._stream.flush()
