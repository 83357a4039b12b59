"""Classification slower than real time: interim windows are skipped and counted, nothing else is lost."""
from __future__ import annotations

import time

import numpy as np

from emovox.realtime.audio import FileSource
from emovox.realtime.events import Summary, UtteranceEnd, WindowResult
from emovox.realtime.model import Classifier, load_model_info
from emovox.realtime.pipeline import Pipeline
from emovox.realtime.runner import DONE, Worker
from emovox.realtime.settings import PipelineSettings, WindowSettings
from tests.conftest import Recording


class SlowClassifier(Classifier):
    """The shipped model, with 1.5 s added to every call: far behind real time."""

    def predict(self, windows: np.ndarray) -> np.ndarray:
        time.sleep(1.5)
        return super().predict(windows)


def test_slow_classifier_skips_interim_windows_and_keeps_every_utterance(three_utterances: Recording) -> None:
    pipeline = Pipeline(SlowClassifier(load_model_info()), PipelineSettings(window=WindowSettings(hop_s=0.5)))
    source = FileSource(three_utterances.path, realtime=True)  # paced like a microphone
    worker = Worker(source.blocks(), pipeline, source)
    began = time.monotonic()
    worker.start()
    events = []
    while (event := worker.events.get(timeout=120)) is not DONE:
        events.append(event)
    elapsed = time.monotonic() - began
    ends = [e for e in events if isinstance(e, UtteranceEnd)]
    summary = events[-1]
    assert isinstance(summary, Summary)
    assert len(ends) == 3 and summary.utterances == 3
    assert summary.skipped_windows >= 5
    assert worker.status.skipped_windows == summary.skipped_windows
    windows = [e for e in events if isinstance(e, WindowResult)]
    # every final window was classified; only interim ones were skipped
    assert {(e.utterance, e.t_end) for e in ends} <= {(w.utterance, w.t_end) for w in windows}
    # it kept up with the audio instead of queuing 1.5 s per interim window
    assert elapsed < 17.0 + 3 * 1.5 + 3.0
    assert summary.dropped_frames == 0


def test_fast_replay_never_skips(three_utterances: Recording) -> None:
    pipeline = Pipeline(Classifier(load_model_info()), PipelineSettings())
    source = FileSource(three_utterances.path, realtime=False)
    worker = Worker(source.blocks(), pipeline, source)
    worker.start()
    events = []
    while (event := worker.events.get(timeout=60)) is not DONE:
        events.append(event)
    assert events[-1].skipped_windows == 0
