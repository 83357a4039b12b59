"""ser-live: recognise emotion in live speech or a replayed recording."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from emovox.realtime.audio import AudioError, FileSource
from emovox.realtime.model import Classifier, ModelError, load_model_info
from emovox.realtime.pipeline import Pipeline
from emovox.realtime.settings import PipelineSettings, VadSettings, WindowSettings
from emovox.realtime.sinks import JsonlSink, OutputError, Sink, TextSink

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ser-live", description="Real-time speech emotion recognition from a microphone or a file.")
    source = parser.add_argument_group("input")
    source.add_argument("--file", type=Path, metavar="PATH",
                        help="replay a recording (any format soundfile reads) through the live pipeline")
    source.add_argument("--fast", action="store_true",
                        help="with --file: process as fast as possible instead of in real time")
    output = parser.add_argument_group("output")
    output.add_argument("--json", type=Path, metavar="PATH", help="write events as JSON lines to PATH")
    output.add_argument("--no-dashboard", action="store_true",
                        help="plain lines on stdout instead of the live view")
    output.add_argument("--windows", action="store_true", help="also print interim window results")
    model = parser.add_argument_group("model")
    model.add_argument("--model", type=Path, metavar="PATH",
                       help="an ONNX model with its .json metadata (default: the shipped int8 model)")
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
    return PipelineSettings(vad=VadSettings(mode=args.vad_mode),
                            window=WindowSettings(window_s=window_s, hop_s=args.hop),
                            min_confidence=args.min_confidence)


def run(blocks: Iterable, pipeline: Pipeline, sinks: list[Sink]) -> int:
    """Drive the pipeline; whatever happens, close the stream and write the summary."""
    status = EXIT_OK
    try:
        for block in blocks:
            for event in pipeline.push(block):
                for sink in sinks:
                    sink.handle(event)
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
    except AudioError as error:
        print(f"ser-live: error: {error}", file=sys.stderr)
        status = EXIT_USAGE
    for event in pipeline.finish():
        for sink in sinks:
            sink.handle(event)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    sinks: list[Sink] = []
    try:
        if args.file is None:
            parser.error("live microphone input is not available yet: use --file PATH")
        info = load_model_info(args.model)
        settings = _settings(args, info.window_s)
        source = FileSource(args.file, realtime=not args.fast)
        classifier = Classifier(info, threads=args.threads, gpu=args.gpu)
        pipeline = Pipeline(classifier, settings)
        if args.json is not None:
            sinks.append(JsonlSink(args.json))
        sinks.append(TextSink(sys.stdout, windows=args.windows))
        return run(source.blocks(), pipeline, sinks)
    except (ModelError, AudioError, OutputError, ValueError) as error:
        print(f"ser-live: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        for sink in sinks:
            sink.close()


if __name__ == "__main__":
    sys.exit(main())
