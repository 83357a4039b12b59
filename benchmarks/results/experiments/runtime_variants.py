"""Can the shipped three get back under 2 ms per window without new weights? (session 31)

``ser-bench`` timed the default at 2.04 ms in session 30 (1.90 in session 26). An ORT profile of one
thread, batch 1, puts a quarter of the time in the int8 convolutions, a sixth in the int8 LSTMs and
a tenth in the front end; the rest is spread over many small nodes. This times what could be
changed without retraining, each against the bundled default in the same interleaved run (one
thread, batch 1, the runtime's own ``Classifier`` where the file is what changes):

- ``requantized``: the bundled fp32 file quantized again as shipping does, with these 40 windows
  for the static scales (the control for the variants below that are quantized here);
- ``exporter_shapes``: the bundled PyTorch weights exported as the TorchScript exporter writes them,
  with the run-time shape arithmetic (Shape, Gather, Concat, ConstantOfShape...) that
  ``export.make_shapes_static`` removes since session 31, then quantized as ``requantized``: the
  files as they were shipped before, with the same outputs;
- ``grouped``: the members' three convolution blocks merged into one grouped convolution each
  (same weights, one node per block instead of three), exported and quantized as ``exporter_shapes``;
- ``uint8_activations``: ``requantized`` with the convolutions' activations quantized to uint8;
- ``extended_optimizations``, ``denormals_as_zero``: the bundled file in sessions with ORT's graph
  optimizations at EXTENDED (no NCHWc layouts) or denormals flushed to zero;
- ``narrow_x4``, ``narrow_x5``: not the shipped weights but what more, smaller networks would cost, for
  a next step (averaging networks is the one lever that has held): four and five untrained networks
  at 3/4 and 1/2 width (CNN 12-24-36 with a biLSTM of 48, CNN 8-16-24 with 32) behind one front end,
  every other one window-mean, exported and quantized as a shipped file is (time and size do not
  depend on the weights' values).

    .venv/bin/python benchmarks/results/experiments/runtime_variants.py benchmarks/results/experiments/runtime-variants
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType
from torch import nn

from emovox.benchmarks.cli import speech_windows
from emovox.benchmarks.stages import onnx_runner
from emovox.realtime.model import default_model_path, metadata_path
from emovox.train.ensemble import PROBABILITY_FLOOR, EnsembleBackbone, ensemble_model, shipped_model
from emovox.train.export import INPUT_NAME, ORT_DISABLED_OPTIMIZERS, export_fp32, quantize_int8
from emovox.train.model import CNNLSTM, FrontendSpec, subtract_window_mean
from time_onnx_files import ROUNDS, RUNS, interleaved_p50



class GroupedBackbone(nn.Module):
    """An ``EnsembleBackbone`` whose members' conv blocks run as one grouped convolution each."""

    def __init__(self, ensemble: EnsembleBackbone) -> None:
        super().__init__()
        members = list(ensemble.members)
        self.k, self.log_floor = len(members), members[0].log_floor
        self.window_mean = [m.window_mean for m in members]
        norms = [m.input_norm for m in members]
        scale = torch.stack([n.weight / torch.sqrt(n.running_var + n.eps) for n in norms]).detach()
        self.register_buffer("norm_scale", scale[None, :, :, None])
        self.register_buffer("norm_shift", torch.stack([n.bias.detach() for n in norms])[None, :, :, None]
                             - torch.stack([n.running_mean for n in norms])[None, :, :, None] * scale[None, :, :, None])
        blocks = []
        for j in range(len(members[0].convs)):
            convs, norms2d = [m.convs[j][0] for m in members], [m.convs[j][1] for m in members]
            conv = nn.Conv2d(self.k * convs[0].in_channels, self.k * convs[0].out_channels, 3, padding=1,
                             bias=False, groups=self.k)
            conv.weight.data = torch.cat([c.weight.data for c in convs])
            norm = nn.BatchNorm2d(conv.out_channels, eps=norms2d[0].eps)
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(norm, name).data = torch.cat([getattr(n, name).data for n in norms2d])
            blocks.append(nn.Sequential(conv, norm, nn.ReLU(), nn.MaxPool2d(members[0].convs[j][3].kernel_size)))
        self.convs = nn.Sequential(*blocks)
        self.lstms = nn.ModuleList(m.lstm for m in members)
        self.attentions = nn.ModuleList(m.attention for m in members)
        self.heads = nn.ModuleList(m.head for m in members)
        self.register_buffer("temperatures", ensemble.temperatures.clone())

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        centred = subtract_window_mean(logmel, self.log_floor) if any(self.window_mean) else logmel
        x = torch.stack([centred if wm else logmel for wm in self.window_mean], 1) * self.norm_scale + self.norm_shift
        x = self.convs(x)
        b, kc, f, t = x.shape
        x = x.reshape(b, self.k, kc // self.k, f, t).permute(1, 0, 4, 2, 3).reshape(self.k, b, t, (kc // self.k) * f)
        probs = []
        for i in range(self.k):
            h, _ = self.lstms[i](x[i])
            pooled = (torch.softmax(self.attentions[i](h), dim=1) * h).sum(1)
            probs.append(torch.softmax(self.heads[i](pooled) / self.temperatures[i], dim=-1))
        return torch.log(torch.stack(probs).mean(0).clamp(min=PROBABILITY_FLOOR))


def session_runner(path: Path, level: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                   denormals_as_zero: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """The runtime's session settings (one thread, its disabled optimizer), with one changed."""
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = 1, 1, 3
    options.graph_optimization_level = level
    if denormals_as_zero:
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                                   disabled_optimizers=ORT_DISABLED_OPTIMIZERS)
    return lambda batch: session.run(None, {INPUT_NAME: batch})[0]


def narrow_ensemble(spec: FrontendSpec, count: int, channels: tuple[int, int, int], hidden: int) -> nn.Module:
    """``count`` untrained networks of the given shape behind one front end, every other one window-mean."""
    torch.manual_seed(0)
    members = [CNNLSTM(spec.n_mels, 8, channels=channels, hidden=hidden, window_mean=i % 2 == 1).eval()
               for i in range(count)]
    return ensemble_model(spec, members, [1.0] * count)


def main(out_dir: Path) -> None:
    shipped = default_model_path()
    meta = json.loads(metadata_path(shipped).read_text())
    windows = speech_windows(Path("../shared/data/ravdess"), 40)
    weights = shipped.with_suffix("").with_suffix(".pt")
    model, plain = shipped_model(meta, weights), shipped_model(meta, weights)
    with torch.no_grad():
        reference = model(torch.from_numpy(windows)).numpy()
        model.backbone = GroupedBackbone(model.backbone).eval()
        grouped_torch = model(torch.from_numpy(windows)).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {name: folder / f"{name}.int8.onnx" for name in
                 ("requantized", "exporter_shapes", "grouped", "uint8_activations", "narrow_x4", "narrow_x5")}
        for name, shape in (("narrow_x4", (4, (12, 24, 36), 48)), ("narrow_x5", (5, (8, 16, 24), 32))):
            export_fp32(narrow_ensemble(model.frontend.spec, *shape), folder / f"{name}.fp32.onnx", windows.shape[1])
            quantize_int8(folder / f"{name}.fp32.onnx", files[name], windows)
        shipped_fp32 = shipped.with_name(shipped.name.replace(".int8.", ".fp32."))
        quantize_int8(shipped_fp32, files["requantized"], windows)
        quantize_int8(shipped_fp32, files["uint8_activations"], windows, activations=QuantType.QUInt8)
        for name, source in (("exporter_shapes", plain), ("grouped", model)):
            export_fp32(source, folder / f"{name}.fp32.onnx", windows.shape[1], static_shapes=False)
            quantize_int8(folder / f"{name}.fp32.onnx", files[name], windows)
        nodes = {name: len(onnx.load(str(path)).graph.node) for name, path in files.items()}
        nodes["shipped"] = len(onnx.load(str(shipped)).graph.node)
        for path in files.values():
            shutil.copy(metadata_path(shipped), metadata_path(path))
        runners = {"shipped": onnx_runner(shipped, 1), **{name: onnx_runner(path, 1) for name, path in files.items()},
                   "extended_optimizations": session_runner(shipped, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED),
                   "denormals_as_zero": session_runner(shipped, denormals_as_zero=True)}
        outputs = {name: np.asarray(run(windows)) for name, run in runners.items()}
        p50 = interleaved_p50(runners, windows)
        sizes = {name: path.stat().st_size for name, path in files.items()} | {"shipped": shipped.stat().st_size}
    same_weights = [name for name in outputs if not name.startswith("narrow")]
    result = {
        "ms_per_window_p50": p50,
        "over_shipped": {name: round(ms / p50["shipped"], 3) for name, ms in p50.items()},
        "max_abs_prob_diff_vs_shipped": {name: float(np.abs(outputs[name] - outputs["shipped"]).max())
                                         for name in same_weights},
        "max_abs_prob_diff_vs_requantized": {name: float(np.abs(outputs[name] - outputs["requantized"]).max())
                                             for name in same_weights},
        "same_top1_as_pytorch": {name: float((outputs[name].argmax(1) == reference.argmax(1)).mean())
                                 for name in same_weights},
        "grouped_pytorch_vs_shipped_pytorch_max_abs": float(np.abs(grouped_torch - reference).max()),
        "nodes": nodes,
        "sizes_bytes": sizes, "windows": len(windows), "runs_per_case": ROUNDS * RUNS, "threads": 1, "batch": 1,
        "onnxruntime": ort.__version__,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "runtime_variants.json").write_text(json.dumps(result, indent=1) + "\n")
    rows = [f"| {name} | {p50[name]:.3f} | {result['over_shipped'][name]:.3f} | "
            + (f"{result['max_abs_prob_diff_vs_shipped'][name]:.4f} |" if name in same_weights else "other weights |")
            for name in p50]
    (out_dir / "runtime_variants.md").write_text(
        "| variant | p50 ms | vs shipped | max prob. change |\n|---|---|---|---|\n" + "\n".join(rows) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: runtime_variants.py OUT_DIR")
    main(Path(sys.argv[1]))
