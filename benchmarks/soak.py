"""Soak: an hour of speech and silence replayed with --fast, ser-live's memory sampled throughout.

    python -m emovox.benchmarks.soak            # 60 minutes -> benchmarks/results/soak.{json,md,png}

Passes when RSS grows by less than 5 MB from the first minute of audio to the end
and every utterance in the recording (as the segmenter finds it offline, in one pass over the
file) comes out as exactly one utterance_end.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
MAX_GROWTH_MB = 5.0


def build_speech_and_silence(ravdess_dir: Path, minutes: float, out: Path, gap_s: float = 1.0,
                             pause_every: int = 20, pause_s: float = 30.0) -> tuple[Path, int]:
    """RAVDESS files (each with its own quiet edges) separated by ``gap_s`` of silence, and a
    ``pause_s`` silence after every ``pause_every`` files, until ``minutes``. Returns (path, files).

    """
    files = sorted(Path(ravdess_dir).rglob("*.flac"))
    if not files:
        raise FileNotFoundError(f"no RAVDESS files under {ravdess_dir}")
    count_file = out.with_suffix(".count")
    target = int(minutes * 60 * SAMPLE_RATE)
    if out.exists() and count_file.exists() and sf.info(str(out)).frames >= target:
        return out, int(count_file.read_text())
    out.parent.mkdir(parents=True, exist_ok=True)
    written, count = 0, 0
    gap, pause = np.zeros(int(gap_s * SAMPLE_RATE), np.float32), np.zeros(int(pause_s * SAMPLE_RATE), np.float32)
    with sf.SoundFile(str(out), "w", SAMPLE_RATE, 1, subtype="PCM_16") as sink:
        while written < target:
            audio, rate = sf.read(str(files[(count * 7) % len(files)]), dtype="float32")  # stride: mix actors
            assert rate == SAMPLE_RATE
            silence = pause if (count + 1) % pause_every == 0 else gap
            sink.write(audio)
            sink.write(silence)
            written += len(audio) + len(silence)
            count += 1
    count_file.write_text(str(count))
    return out, count


@dataclass
class Sample:
    wall_s: float
    stream_s: float
    """Stream time of the last event written so far."""
    rss_mb: float


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def _last_event_time(events_file: Path) -> float:
    try:
        with open(events_file, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 4096))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return 0.0
    for line in reversed(lines):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        return float(event.get("t_end", event.get("t", event.get("duration_s", 0.0))))
    return 0.0


def replay_sampled(recording: Path, events_file: Path, interval_s: float = 0.05) -> tuple[int, list[Sample]]:
    """Run ser-live --fast on ``recording``, sampling its RSS and progress until it exits."""
    events_file.unlink(missing_ok=True)  # progress is read from it: no stale events
    process = subprocess.Popen([sys.executable, "-m", "emovox.realtime.cli", "--file", str(recording), "--fast",
                                "--no-dashboard", "--json", str(events_file)], stdout=subprocess.DEVNULL)
    began, samples = time.monotonic(), []
    while process.poll() is None:
        rss = _rss_mb(process.pid)
        if rss is not None:
            samples.append(Sample(round(time.monotonic() - began, 3), _last_event_time(events_file), round(rss, 2)))
        time.sleep(interval_s)
    return process.wait(), samples


def growth_after(samples: list[Sample], warm_stream_s: float = 60.0) -> dict:
    """RSS at the first sample past ``warm_stream_s`` of audio, in the middle and at the end."""
    warm = [s for s in samples if s.stream_s >= warm_stream_s]
    if not warm:
        raise RuntimeError(f"no memory sample after {warm_stream_s:.0f} s of audio: the replay was too short")
    start, middle, end = warm[0], warm[len(warm) // 2], warm[-1]
    return {"start": {"stream_s": start.stream_s, "rss_mb": start.rss_mb},
            "middle": {"stream_s": middle.stream_s, "rss_mb": middle.rss_mb},
            "end": {"stream_s": end.stream_s, "rss_mb": end.rss_mb},
            "max_rss_mb": max(s.rss_mb for s in warm),
            "growth_mb": round(max(s.rss_mb for s in warm) - start.rss_mb, 2)}


def reference_utterances(recording: Path) -> int:
    """Utterances the segmenter finds in the recording offline: one pass, no threads, queues or sinks.

    A few RAVDESS files hold a pause that the segmenter splits on, so this is a little more than
    the number of files; the soak checks that the live path delivers every one of them.
    """
    from emovox.realtime.settings import VadSettings
    from emovox.realtime.vad import Segmenter, SpeechStart

    settings = VadSettings()
    segmenter, frame, starts = Segmenter(settings), settings.frame_samples, 0
    for block in sf.blocks(str(recording), blocksize=frame * 1000, dtype="float32"):
        for i in range(0, len(block) - frame + 1, frame):
            starts += sum(isinstance(e, SpeechStart) for e in segmenter.process(block[i:i + frame]))
    return starts


def soak(recording: Path, expected_utterances: int, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    events_file = work / "soak.jsonl"
    began = time.monotonic()
    status, samples = replay_sampled(recording, events_file)
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    ends = sum(e["type"] == "utterance_end" for e in events)
    summary = events[-1] if events and events[-1]["type"] == "summary" else {}
    memory = growth_after(samples)
    return {"audio_s": round(sf.info(str(recording)).duration, 1), "wall_s": round(time.monotonic() - began, 2),
            "exit_status": status, "utterances_in_recording": expected_utterances, "utterance_end_events": ends,
            "summary_utterances": summary.get("utterances"), "memory": memory,
            "passed": bool(status == 0 and ends == expected_utterances == summary.get("utterances")
                           and memory["growth_mb"] < MAX_GROWTH_MB),
            "samples": [[s.wall_s, s.stream_s, s.rss_mb] for s in samples]}


def write_report(report: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "soak.json").write_text(json.dumps(report, indent=1) + "\n")
    m = report["memory"]
    rows = "\n".join(f"| {name} | {m[name]['stream_s'] / 60:.1f} min | {m[name]['rss_mb']:.1f} MB |"
                     for name in ("start", "middle", "end"))
    (out_dir / "soak.md").write_text(
        f"Soak: {report['audio_s'] / 60:.0f} min of speech and silence in {report['wall_s']:.1f} s (--fast); "
        f"{report['utterance_end_events']} utterance_end events for the {report['utterances_in_recording']} "
        f"utterances the segmenter finds offline in its {report.get('files_in_recording')} files; "
        f"RSS growth after the first minute {m['growth_mb']:.2f} MB "
        f"(limit {MAX_GROWTH_MB:.0f}); {'PASS' if report['passed'] else 'FAIL'}.\n\n"
        f"| point | audio position | RSS |\n|---|---|---|\n{rows}\n\n"
        "Regenerate: `python -m emovox.benchmarks.soak`.\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    samples = np.array(report["samples"])
    figure, axes = plt.subplots(figsize=(6.4, 3.2))
    axes.plot(samples[:, 1] / 60, samples[:, 2])
    axes.set_xlabel("audio position (min)")
    axes.set_ylabel("ser-live RSS (MB)")
    axes.set_title("Soak: memory over an hour of replayed audio", fontsize=10)
    figure.tight_layout()
    figure.savefig(out_dir / "soak_rss.png", dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emovox.benchmarks.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="corpora root (default %(default)s)")
    parser.add_argument("--work", type=Path, default=Path(".cache/soak"), help="scratch folder (default %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="default %(default)s")
    args = parser.parse_args(argv)
    try:
        recording, count = build_speech_and_silence(args.data / "ravdess", args.minutes,
                                                    args.work / f"soak-{args.minutes:g}min.wav")
    except FileNotFoundError as error:
        print(f"soak: error: {error}", file=sys.stderr)
        return 2
    report = soak(recording, reference_utterances(recording), args.work)
    report["files_in_recording"] = count
    write_report(report, args.out)
    print((args.out / "soak.md").read_text())
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
