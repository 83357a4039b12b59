"""Everything below the audio source: 16 kHz samples in, events out."""
from __future__ import annotations

import numpy as np

from emovox.realtime.aggregate import Aggregator, label_of
from emovox.realtime.events import Event, Summary, UtteranceEnd, UtteranceStart, WindowResult, probs_by_label, seconds
from emovox.realtime.model import Classifier, ModelError
from emovox.realtime.ringbuffer import RingBuffer
from emovox.realtime.settings import SAMPLE_RATE, PipelineSettings
from emovox.realtime.vad import Segmenter, SpeechEnd, SpeechStart
from emovox.realtime.windowing import Window, Windower


class Pipeline:
    """Segment, window, classify and aggregate a 16 kHz stream, block by block.

    Every decision is made on 30 ms frames at absolute sample positions, so the
    events do not depend on how the stream was chunked (live callbacks, file
    blocks): file replay tests the live path.
    """

    def __init__(self, classifier: Classifier, settings: PipelineSettings) -> None:
        info = classifier.info
        if info.sample_rate != SAMPLE_RATE:
            raise ModelError(f"model expects {info.sample_rate} Hz; the pipeline runs at {SAMPLE_RATE} Hz")
        if info.window_samples != settings.window.window_samples:
            raise ModelError(f"model window is {info.window_samples} samples; "
                             f"settings ask for {settings.window.window_samples}")
        self.settings = settings
        self.classifier = classifier
        self.labels = info.labels
        vad = settings.vad
        capacity = settings.window.window_samples + settings.window.hop_samples + \
            (vad.ring_frames + 2) * vad.frame_samples + vad.preroll_samples
        self._history = RingBuffer(capacity)
        self._segmenter = Segmenter(vad)
        self._windower = Windower(settings.window, self._history)
        self._aggregator = Aggregator(len(self.labels))
        self._next_frame = 0
        self._onset = 0
        self.final_labels: dict[str, int] = {}
        self.utterances = 0
        self.dropped_frames = 0
        self.skip_interim = False
        """Set by whoever drives the pipeline when it falls behind real time: interim windows
        are then counted in ``skipped_windows`` instead of classified (final ones never are)."""
        self.skipped_windows = 0

    @property
    def position(self) -> int:
        """Samples received so far."""
        return self._history.total

    @property
    def in_speech(self) -> bool:
        return self._segmenter.in_speech

    def push(self, samples: np.ndarray) -> list[Event]:
        """Feed any number of 16 kHz mono float32 samples."""
        step = self.settings.vad.frame_samples * 10  # well inside the history, whatever the block size
        events: list[Event] = []
        for offset in range(0, len(samples), step):
            events.extend(self._push(samples[offset:offset + step]))
        return events

    def _push(self, samples: np.ndarray) -> list[Event]:
        self._history.write(samples)
        frame_samples = self.settings.vad.frame_samples
        events: list[Event] = []
        while self._history.total - self._next_frame >= frame_samples:
            frame = self._history.read(self._next_frame, self._next_frame + frame_samples)
            self._next_frame += frame_samples
            ended = False
            for decision in self._segmenter.process(frame):
                if isinstance(decision, SpeechStart):
                    events.append(self._start(decision))
                else:
                    events.extend(self._end(decision))
                    ended = True
            if not ended:
                for window in self._windower.advance(self._next_frame):
                    if self.skip_interim:
                        self.skipped_windows += 1
                    else:
                        events.append(self._classify(window))
        return events

    def finish(self) -> list[Event]:
        """End of stream: close an open utterance and report the summary."""
        events: list[Event] = []
        for decision in self._segmenter.flush():
            assert isinstance(decision, SpeechEnd)
            events.extend(self._end(decision))
        events.append(self.summary())
        return events

    def summary(self) -> Summary:
        return Summary(self.utterances, seconds(self.position, SAMPLE_RATE),
                       dict(self.final_labels), self.dropped_frames, self.skipped_windows)

    def _start(self, decision: SpeechStart) -> UtteranceStart:
        self._windower.start(decision.audio_start)
        self._onset = decision.onset
        return UtteranceStart(self._windower.utterance, seconds(decision.onset, SAMPLE_RATE))

    def _classify(self, window: Window) -> WindowResult:
        probs, compute_ms = self.classifier.timed_predict(window.audio[None])
        self._aggregator.add(window.end, window.full, window.final, probs[0])
        label, confidence = label_of(self.labels, probs[0], 0.0)
        return WindowResult(window.utterance, seconds(window.start, SAMPLE_RATE),
                            seconds(window.end, SAMPLE_RATE), label, round(confidence, 4),
                            probs_by_label(self.labels, probs[0]), round(compute_ms, 3))

    def _end(self, decision: SpeechEnd) -> list[Event]:
        finals = [self._classify(w) for w in self._windower.end(decision.end)]
        events: list[Event] = list(finals)
        probs = self._aggregator.finish(decision.end)
        label, confidence = label_of(self.labels, probs, self.settings.min_confidence)
        self.utterances += 1
        self.final_labels[label] = self.final_labels.get(label, 0) + 1
        hangover_ms = (decision.decided_at - decision.end) * 1000.0 / SAMPLE_RATE
        events.append(UtteranceEnd(self._windower.utterance, seconds(self._onset, SAMPLE_RATE),
                                   seconds(decision.end, SAMPLE_RATE), label, round(confidence, 4),
                                   probs_by_label(self.labels, probs),
                                   round(hangover_ms + sum(w.compute_ms for w in finals), 3)))
        return events
