"""ser-live: recognise emotion in live speech or a replayed recording."""
from __future__ import annotations

import argparse
import queue
import signal
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

from emovox.realtime.audio import AudioError, FileSource
from emovox.realtime.dashboard import DashboardState, render
from emovox.realtime.events import Summary
from emovox.realtime.model import BUNDLED_MODELS, Classifier, ModelError, load_model_info
from emovox.realtime.pipeline import Pipeline
from emovox.realtime.runner import DONE, Worker
from emovox.realtime.settings import SAMPLE_RATE, PipelineSettings, VadSettings, WindowSettings
from emovox.realtime.recorder import Recorder
from emovox.realtime.errors import OutputError
from emovox.realtime.sinks import CsvSink, JsonlSink, Sink, TextSink

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
REFRESH_S = 0.1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ser-live", description="Real-time speech emotion recognition from a microphone or a file.")
    source = parser.add_argument_group("input (default: the default microphone)")
    source.add_argument("--device", "-d", metavar="ID",
                        help="input device: an index or a name substring (see --list-devices)")
    source.add_argument("--list-devices", "-l", action="store_true", help="list input devices and exit")
    source.add_argument("--file", type=Path, metavar="PATH",
                        help="replay a recording (any format soundfile reads) through the live pipeline")
    source.add_argument("--fast", action="store_true",
                        help="with --file: process as fast as possible instead of in real time")
    source.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this much audio")
    output = parser.add_argument_group("output")
    output.add_argument("--json", type=Path, metavar="PATH", help="write events as JSON lines to PATH")
    output.add_argument("--csv", type=Path, metavar="PATH", help="write one CSV row per utterance to PATH")
    output.add_argument("--record", type=Path, metavar="PATH",
                        help="also save the audio heard (16 kHz mono .wav or .flac); without it no audio is stored")
    output.add_argument("--no-dashboard", action="store_true",
                        help="plain lines on stdout instead of the live view (automatic when not a terminal)")
    output.add_argument("--windows", action="store_true", help="plain lines: also print interim window results")
    model = parser.add_argument_group("model")
    model.add_argument("--model", metavar="NAME|PATH",
                       help=f"a bundled model by name ({', '.join(BUNDLED_MODELS)}; default: default, the "
                            "most accurate on clean speech) or an ONNX file with its .json metadata beside it")
    model.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    model.add_argument("--gpu", action="store_true", help="use ONNX Runtime's CUDA provider")
    model.add_argument("--min-confidence", type=float, default=PipelineSettings.min_confidence,
                       help="label utterances below this confidence 'uncertain' (default %(default)s)")
    segment = parser.add_argument_group("segmentation")
    segment.add_argument("--hop", type=float, default=WindowSettings.hop_s,
                         help="seconds between interim results during speech (default %(default)s)")
    segment.add_argument("--vad-mode", type=int, choices=range(4), default=VadSettings.mode,
                         help="webrtcvad aggressiveness 0-3 (default %(default)s)")
    return parser


def _settings(args: argparse.Namespace, window_s: float) -> PipelineSettings:
    if args.hop <= 0:
        raise ValueError("--hop must be positive")
    if not 0.0 <= args.min_confidence <= 1.0:
        raise ValueError("--min-confidence must be between 0 and 1")
    if args.threads < 1:
        raise ValueError("--threads must be at least 1")
    if args.duration is not None and args.duration <= 0:
        raise ValueError("--duration must be positive")
    if args.fast and args.file is None:
        raise ValueError("--fast only applies to --file")
    return PipelineSettings(vad=VadSettings(mode=args.vad_mode),
                            window=WindowSettings(window_s=window_s, hop_s=args.hop),
                            min_confidence=args.min_confidence)


def limit_duration(blocks: Iterable[np.ndarray], seconds: float | None) -> Iterator[np.ndarray]:
    """Stop after ``seconds`` of 16 kHz audio."""
    remaining = None if seconds is None else int(seconds * SAMPLE_RATE)
    for block in blocks:
        if remaining is not None:
            block = block[:remaining]
            remaining -= len(block)
        yield block
        if remaining is not None and remaining <= 0:
            return


def _open_source(args: argparse.Namespace) -> tuple[object, str]:
    if args.file is not None:
        return FileSource(args.file, realtime=not args.fast), str(args.file)
    from emovox.realtime.mic import MicSource, input_devices, resolve_device

    device = resolve_device(args.device, input_devices())
    return MicSource(device), f"mic {device.index}: {device.name}"


class StopRequest:
    """SIGINT/SIGTERM only set a flag, from the first line of ``main`` on: no exception can cut a
    write in half, and a signal that comes while the model loads still ends in a summary.
    A second signal force-quits (KeyboardInterrupt), for a stop that hangs."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.received = 0

    def __call__(self, signum: int, frame: object) -> None:
        self.received += 1
        if self.received > 1:
            raise KeyboardInterrupt
        self.signal = signum

    @property
    def requested(self) -> bool:
        return self.received > 0


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    stop = StopRequest()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_session(source: object, blocks: Iterable[np.ndarray], pipeline: Pipeline, sinks: list[Sink],
                dashboard: bool, source_name: str, stop: StopRequest, recorder: Recorder | None = None) -> int:
    """Worker thread does audio -> events; this thread feeds sinks and the view until the end.

    A sink that fails to write stops the run: the worker finishes the pipeline, the
    other sinks still get the rest (the summary included), and the exit code is 2.
    """
    from rich.console import Console
    from rich.live import Live

    info = pipeline.classifier.info
    state = DashboardState(info.labels, info.path.name, pipeline.classifier.provider)
    worker = Worker(blocks, pipeline, source, recorder=recorder)
    status, summary = EXIT_OK, None
    console = Console()
    view = Live(render(state, worker.status, source_name), console=console, auto_refresh=False) \
        if dashboard else nullcontext()
    active = list(sinks)  # the caller still closes every sink, failed ones included
    worker.start()
    forced = True
    try:
        with view:
            while True:
                if stop.signal is not None and status == EXIT_OK:
                    status = EXIT_INTERRUPTED if stop.signal == signal.SIGINT else EXIT_OK
                    stop.signal = None
                    worker.stop()
                try:
                    event = worker.events.get(timeout=REFRESH_S)
                except queue.Empty:
                    event = None
                if event is DONE:
                    break
                if event is not None:
                    state.update(event)
                    summary = event if isinstance(event, Summary) else summary
                    for sink in list(active):
                        try:
                            sink.handle(event)
                        except OutputError as error:
                            print(f"ser-live: error: {error}", file=sys.stderr)
                            active.remove(sink)
                            status = EXIT_USAGE
                            worker.stop()
                if dashboard:
                    view.update(render(state, worker.status, source_name), refresh=True)
        forced = False
    finally:  # whatever ends the loop, the worker stops before the recorder and sinks are closed
        worker.stop()
        worker.join(timeout=2.0 if forced else None)  # a force-quit does not wait for a hung worker
    if dashboard and summary is not None:
        console.print(state.tally.describe(summary))
    if worker.crash is not None:
        raise worker.crash
    if worker.error is not None:
        print(f"ser-live: error: {worker.error}", file=sys.stderr)
        return EXIT_USAGE
    return status


def _refuse_to_overwrite_the_input(args: argparse.Namespace) -> None:
    if args.file is None or not Path(args.file).exists():
        return
    for option, path in (("--json", args.json), ("--csv", args.csv), ("--record", args.record)):
        if path is not None and Path(path).exists() and Path(path).samefile(args.file):
            raise ValueError(f"{option} {path} is the input file: it would be overwritten")


def _stopped_before_start(stop: StopRequest, sinks: list[Sink], pipeline: Pipeline) -> int:
    """A signal came before any audio: the outputs still end with a (zero) summary."""
    summary = pipeline.summary()
    for sink in [*sinks, TextSink(sys.stdout)]:
        sink.handle(summary)
    return EXIT_INTERRUPTED if stop.signal == signal.SIGINT else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    with stop_on_signals() as stop:
        return _main(build_parser().parse_args(argv), stop)


def _main(args: argparse.Namespace, stop: StopRequest) -> int:
    sinks: list[Sink] = []
    recorder: Recorder | None = None
    try:
        if args.list_devices:
            from emovox.realtime.mic import describe_devices, input_devices

            print(describe_devices(input_devices()))
            return EXIT_OK
        if args.file is not None and args.device is not None:
            raise ValueError("give either --file or --device, not both")
        info = load_model_info(args.model)
        settings = _settings(args, info.window_s)
        classifier = Classifier(info, threads=args.threads, gpu=args.gpu)
        pipeline = Pipeline(classifier, settings)
        _refuse_to_overwrite_the_input(args)
        if args.json is not None:
            sinks.append(JsonlSink(args.json))
        if args.csv is not None:
            sinks.append(CsvSink(args.csv, info.labels))
        if stop.requested:  # stopped while the model loaded: no device opened, no audio recorded
            return _stopped_before_start(stop, sinks, pipeline)
        source, source_name = _open_source(args)
        if args.record is not None:
            recorder = Recorder(args.record)
        dashboard = not args.no_dashboard and sys.stdout.isatty()
        if not dashboard:
            sinks.append(TextSink(sys.stdout, windows=args.windows))
        blocks = limit_duration(source.blocks(), args.duration)
        status = run_session(source, blocks, pipeline, sinks, dashboard, source_name, stop, recorder)
        if recorder is not None:
            recorder.close()
        return status
    except (ModelError, AudioError, OutputError, ValueError) as error:
        print(f"ser-live: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:  # a bug: say so in one line, exit 1
        print(f"ser-live: internal error: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        for sink in sinks:
            sink.close()
        if recorder is not None and not recorder.failed:
            try:
                recorder.close()
            except OutputError as error:  # only when the run itself failed first
                print(f"ser-live: error: {error}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
