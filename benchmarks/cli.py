"""ser-bench: per-stage latency, end-to-end replay, memory, and ratios measured in one run."""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

from emovox.benchmarks import replay as e2e
from emovox.benchmarks import stages

TARGETS = {
    "int8 faster than fp32 (int8/fp32 < 1)": lambda r: r["ratios"]["int8_over_fp32"] < 1.0,
    "int8 <= 2 ms per window, p50, 1 thread": lambda r: r["int8_ms_p50"] <= 2.0,
    ">= 20x faster than the seed-style pipeline": lambda r: (r["ratios"].get("seed_style_over_int8") or 0) >= 20,
    "replay >= 200x real time": lambda r: r["replay_realtime_factor"] >= 200,
    "ser-live peak RSS <= 150 MB": lambda r: r["peak_rss_mb"] <= 150,
    "first result <= 1 s after start": lambda r: r["first_result_s"] <= 1.0,
}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def find_models() -> dict[str, Path]:
    """The shipped int8 files, and beside them (or in ./models) the fp32 file and PyTorch weights."""
    from emovox.realtime.model import BUNDLED_MODELS, bundled_model_path, default_model_path

    int8 = default_model_path()
    found = {"int8": int8}
    for name in BUNDLED_MODELS:
        if name != "default" and bundled_model_path(name).exists():
            found[f"int8-{name}"] = bundled_model_path(name)
    for key, name in (("fp32", "emotion_cnn_lstm.fp32.onnx"), ("pytorch", "emotion_cnn_lstm.pt")):
        for folder in (int8.parent, Path("models")):
            if (folder / name).exists():
                found[key] = folder / name
                break
    return found


def speech_windows(ravdess: Path, count: int) -> np.ndarray:
    """Real 2.5 s windows from corpus files, cut exactly as the runtime cuts them."""
    import soundfile as sf

    from emovox.realtime.settings import VadSettings, WindowSettings
    from emovox.realtime.vad import speech_span
    from emovox.realtime.windowing import fit_to_window

    windows = []
    for path in sorted(ravdess.rglob("*.flac"))[::37][:count]:
        audio, _ = sf.read(str(path), dtype="float32")
        start, end = speech_span(audio, VadSettings())
        windows.append(fit_to_window(audio[start:end], WindowSettings().window_samples))
    return np.stack(windows)


def run_benchmarks(data: Path, quick: bool, work: Path, log=print) -> dict:
    import onnxruntime as ort

    models = find_models()
    if "fp32" not in models:
        raise FileNotFoundError("fp32 model not found beside the int8 one or in ./models: run from the repository root")
    meta = json.loads(models["int8"].with_suffix(".json").read_text())
    have_torch = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("librosa") is not None
    have_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    runs = 60 if quick else 500
    ravdess = data / "ravdess"
    windows = speech_windows(ravdess, 16 if quick else 40)
    report: dict = {"machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                                "onnxruntime": ort.__version__, "quick": quick},
                    "runs_per_case": runs, "stages": {}, "classifier": {}}
    log(f"resampling and VAD ({runs} runs each)...")
    report["stages"]["resample_48k_to_16k_per_s_ms"] = stages.resample_per_second(runs)
    report["stages"]["webrtcvad_per_30ms_frame_ms"] = stages.vad_per_frame(windows.reshape(-1), runs)
    histograms: dict[str, np.ndarray] = {}
    other_int8 = [system for system in models if system.startswith("int8-")]
    for case in stages.classifier_cases(have_torch and "pytorch" in models, have_torch, have_cuda, other_int8):
        if case.system in ("int8", "fp32", *other_int8):
            run = stages.onnx_runner(models[case.system], case.threads, case.provider)
        elif case.system == "pytorch":
            run = stages.torch_runner(models["pytorch"], meta, case.threads)
        else:
            run = stages.seed_runner(case.threads)
        # librosa features cost ~40 ms a window: --quick gives the seed-style baseline fewer runs
        case_runs = runs if not (quick and case.system == "seed-style") else (20 if case.batch == 1 else 5)
        log(f"classifier: {case.name} ({case_runs} runs)...")
        ms = stages.time_case(run, windows, case.batch, case_runs)
        report["classifier"][case.name] = stats = {**stages.stats(ms), "system": case.system,
                                                    "threads": case.threads, "batch": case.batch,
                                                    "provider": case.provider}
        if case.threads == 1 and case.batch == 1 and case.provider == "CPU":
            histograms[case.system] = ms
            report[f"{case.system.replace('-', '_')}_ms_p50"] = stats["p50"]
    log("end-to-end replay...")
    minutes = 1.0 if quick else 10.5
    recording, files = e2e.build_recording(ravdess, minutes, work / f"replay_{'1' if quick else '10'}min.wav")
    replay = e2e.replay(recording, work)
    replay["files"] = files
    report["replay"] = replay
    report["replay_realtime_factor"] = replay["realtime_factor"]
    report["peak_rss_mb"] = replay["peak_rss_mb"]
    short, _ = e2e.build_recording(ravdess, 0.1, work / "first_result.wav")
    report["first_result_s"] = e2e.first_result(short, work, repeats=2 if quick else 5)
    report.setdefault("seed_style_ms_p50", None)
    report.setdefault("pytorch_ms_p50", None)
    report["ratios"] = {
        "int8_over_fp32": round(report["int8_ms_p50"] / report["fp32_ms_p50"], 3),
        "seed_style_over_int8": (round(report["seed_style_ms_p50"] / report["int8_ms_p50"], 1)
                                 if report["seed_style_ms_p50"] else None),
        "pytorch_over_int8": (round(report["pytorch_ms_p50"] / report["int8_ms_p50"], 1)
                              if report["pytorch_ms_p50"] else None),
        **{f"{system.removeprefix('int8-').replace('-', '_')}_over_int8":
           round(report[f"{system.replace('-', '_')}_ms_p50"] / report["int8_ms_p50"], 3) for system in other_int8},
        "compute_share_of_real_time": replay["compute_share_of_real_time"],
    }
    report["targets"] = {name: bool(check(report)) for name, check in TARGETS.items()}
    report["_histograms"] = histograms
    return report


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"ser-bench: {report['machine']['cpu']}, {report['machine']['cores']} cores"
                        + (" (quick)" if report["machine"]["quick"] else ""))
    for column in ("scenario", "p50 ms", "p95 ms", "p99 ms", "runs"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for name, s in list(report["stages"].items()) + [(f"window: {k}", v) for k, v in report["classifier"].items()]:
        table.add_row(name, f"{s['p50']:.3f}", f"{s['p95']:.3f}", f"{s['p99']:.3f}", str(s["runs"]))
    console.print(table)
    r = report["replay"]
    console.print(f"replay: {r['audio_s']:.0f} s of audio in {r['wall_s']:.2f} s = {r['realtime_factor']:.0f}x real "
                  f"time; peak RSS {r['peak_rss_mb']:.0f} MB; speech end -> label p50 {r['latency_ms_p50']:.0f} ms "
                  f"(hangover {r['hangover_ms_p50']:.0f} + compute {r['final_compute_ms_p50']:.2f}); "
                  f"first result {report['first_result_s']:.2f} s after start")
    console.print("ratios: " + ", ".join(f"{k} {v}" for k, v in report["ratios"].items()))
    for name, ok in report["targets"].items():
        console.print(f"  [{'green' if ok else 'red'}]{'met ' if ok else 'MISSED'}[/] {name}")


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = ["# ser-bench results", "",
             f"Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, onnxruntime {m['onnxruntime']}. "
             f"Regenerate: `ser-bench --json benchmarks/results/bench.json --markdown benchmarks/results/bench.md "
             f"--plot benchmarks/results/latency_hist.png`.", "",
             "| scenario | p50 ms | p95 ms | p99 ms | runs |", "|---|---|---|---|---|"]
    for name, s in list(report["stages"].items()) + [(f"window: {k}", v) for k, v in report["classifier"].items()]:
        lines.append(f"| {name} | {s['p50']:.3f} | {s['p95']:.3f} | {s['p99']:.3f} | {s['runs']} |")
    r = report["replay"]
    lines += ["", f"Replay of {r['audio_s']:.0f} s ({r['files']} RAVDESS files back to back) with "
              f"`ser-live --file --fast`: {r['wall_s']:.2f} s wall, **{r['realtime_factor']:.0f}x real time**, "
              f"peak RSS **{r['peak_rss_mb']:.0f} MB**, {r['utterances']} utterances; speech end -> final label "
              f"p50 {r['latency_ms_p50']:.0f} ms = VAD hangover {r['hangover_ms_p50']:.0f} ms + compute "
              f"{r['final_compute_ms_p50']:.2f} ms. First result {report['first_result_s']:.2f} s after process start.",
              "", "Ratios (same run): " + ", ".join(f"{k} = {v}" for k, v in report["ratios"].items()), "",
              "| target | met |", "|---|---|"]
    lines += [f"| {name} | {'yes' if ok else '**no**'} |" for name, ok in report["targets"].items()]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for name, ms in report["_histograms"].items():
        ax.hist(ms, bins=np.logspace(-1, 3, 120), alpha=0.6, label=f"{name} (p50 {np.median(ms):.2f} ms)")
    ax.set_xscale("log")
    ax.set_xlabel("ms per 2.5 s window (1 thread, batch 1)")
    ax.set_ylabel("runs")
    ax.legend()
    ax.set_title(f"ser-bench classifier latency: {report['machine']['cpu']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ser-bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs and a 1-minute replay (under a minute)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="corpora root (default %(default)s)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the machine-readable report")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="write a markdown summary")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="write a latency histogram (needs matplotlib)")
    parser.add_argument("--work", type=Path, default=Path(".cache/bench"), help="scratch folder (default %(default)s)")
    args = parser.parse_args(argv)
    if not (args.data / "ravdess").is_dir():
        print(f"ser-bench: error: no RAVDESS corpus under {args.data}", file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    try:
        report = run_benchmarks(args.data, args.quick, args.work, log=lambda text: print(text, file=sys.stderr))
    except FileNotFoundError as error:
        print(f"ser-bench: error: {error}", file=sys.stderr)
        return 2
    print_report(report)
    if args.plot:
        plot(report, args.plot)
    report.pop("_histograms")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
