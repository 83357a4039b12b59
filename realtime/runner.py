"""Threads: the source and the pipeline run in one worker; sinks run on the main thread."""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from emovox.realtime.audio import AudioError
from emovox.realtime.events import Event
from emovox.realtime.pipeline import Pipeline
from emovox.realtime.recorder import Recorder
from emovox.realtime.settings import SAMPLE_RATE
from emovox.realtime.errors import OutputError


@dataclass
class LiveStatus:
    """What the worker last saw; the dashboard reads it between events (plain values, no locking needed)."""

    level_db: float = -120.0
    in_speech: bool = False
    position_s: float = 0.0
    dropped_frames: int = 0
    input_overflows: int = 0
    """PortAudio's own overflow reports (live input only)."""
    skipped_windows: int = 0


class _Done:
    """Marks the end of the event stream."""


DONE = _Done()


class Worker:
    """Runs source -> pipeline in a background thread and queues the events.

    Whatever ends the run (end of input, a stop request, a device fault), the
    pipeline is finished so the open utterance and the summary are still
    delivered, then ``DONE``. With a real-time source, when processing lags the
    audio by more than ``max_lag_s``, interim windows are skipped (and counted)
    until it catches up; the audio itself is never dropped here.
    """

    def __init__(self, blocks: Iterable[np.ndarray], pipeline: Pipeline, source: object,
                 max_lag_s: float = 0.5, recorder: Recorder | None = None) -> None:
        self._blocks = blocks
        self._recorder = recorder
        self._pipeline = pipeline
        self._source = source
        self.events: queue.Queue[Event | _Done] = queue.Queue()
        self.status = LiveStatus()
        self.error: str | None = None
        self.crash: BaseException | None = None
        self._max_lag_s = max_lag_s
        self._realtime = bool(getattr(source, "realtime", False))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ser-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the worker to stop reading audio; it still finishes the pipeline."""
        self._stop.set()
        stop_source = getattr(self._source, "stop_requested", None)
        if stop_source is not None:
            stop_source.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _dropped(self) -> int:
        return int(getattr(self._source, "dropped_frames", 0))

    def _run(self) -> None:
        began = None
        try:
            for block in self._blocks:
                if self._stop.is_set():
                    break
                if self._recorder is not None:  # only audio the pipeline goes on to hear
                    self._recorder.write(block)
                if self._realtime:
                    began = time.monotonic() if began is None else began
                    lag_s = time.monotonic() - began - self._pipeline.position / SAMPLE_RATE
                    self._pipeline.skip_interim = lag_s > self._max_lag_s
                if len(block):
                    self.status.level_db = float(10 * np.log10(np.mean(np.square(block)) + 1e-12))
                for event in self._pipeline.push(block):
                    self.events.put(event)
                self.status.in_speech = self._pipeline.in_speech
                self.status.position_s = self._pipeline.position / SAMPLE_RATE
                self.status.dropped_frames = self._dropped()
                self.status.input_overflows = int(getattr(self._source, "overflows", 0))
                self.status.skipped_windows = self._pipeline.skipped_windows
        except (AudioError, OutputError) as error:
            self.error = str(error)
        except BaseException as error:  # reported by the main thread as an internal error
            self.crash = error
        finally:
            try:
                self._pipeline.dropped_frames = self._dropped()
                for event in self._pipeline.finish():
                    self.events.put(event)
            except BaseException as error:
                self.crash = self.crash or error
            finally:
                self.status.in_speech = False
                self.events.put(DONE)  # always: the main thread waits for it
