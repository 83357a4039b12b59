"""Event consumers. Sinks only receive events; they never call back into the pipeline."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Protocol, TextIO

from emovox.realtime.dashboard import SessionTally
from emovox.realtime.errors import OutputError
from emovox.realtime.events import Event, Summary, UtteranceEnd, UtteranceStart, WindowResult


class Sink(Protocol):
    def handle(self, event: Event) -> None: ...

    def close(self) -> None: ...


class LineFile:
    """An output file written one whole line at a time, unbuffered.

    A failed write (disk full, file-size limit) is cut back to the last complete
    line, so a reader never finds half a record; the error becomes an OutputError.
    Opening happens in the constructor: an unwritable path fails before the run.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._file = open(self.path, "wb", buffering=0)
        except OSError as error:
            raise OutputError(f"cannot write {self.path}: {error.strerror}") from None
        self._complete = 0
        self.failed = False

    def write_line(self, line: str) -> None:
        if self.failed:
            return
        data = memoryview((line + "\n").encode("utf-8"))
        try:
            while data:
                data = data[self._file.write(data):]
        except OSError as error:
            self.failed = True
            try:
                self._file.truncate(self._complete)
            except OSError:
                pass
            raise OutputError(f"writing {self.path} failed: {error.strerror}; it keeps the "
                              f"{self._complete} bytes of complete lines written before") from None
        self._complete += len(line.encode("utf-8")) + 1

    def close(self) -> None:
        self._file.close()


class JsonlSink(LineFile):
    """DESIGN.md's event schema, one JSON object per line, written as each event happens."""

    def handle(self, event: Event) -> None:
        self.write_line(json.dumps(event.to_dict()))


class CsvSink(LineFile):
    """One row per finished utterance (spreadsheet-friendly); times in stream seconds."""

    def __init__(self, path: Path, labels: tuple[str, ...]) -> None:
        super().__init__(path)
        self._labels = labels
        self.write_line(self._row(["utterance", "t_start", "t_end", "label", "confidence", "latency_ms",
                                   *(f"p_{label}" for label in labels)]))

    @staticmethod
    def _row(values: list) -> str:
        text = io.StringIO()
        csv.writer(text, lineterminator="").writerow(values)
        return text.getvalue()

    def handle(self, event: Event) -> None:
        if isinstance(event, UtteranceEnd):
            self.write_line(self._row([event.utterance, event.t_start, event.t_end, event.label, event.confidence,
                                       event.latency_ms, *(event.probs.get(label, 0.0) for label in self._labels)]))


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
            try:
                print(line, file=self._stream, flush=True)
            except OSError as error:  # a closed pipe (| head), a full disk
                raise OutputError(f"writing to standard output failed: {error.strerror or error}") from None

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
        try:
            self._stream.flush()
        except OSError:
            pass  # already reported by handle()
