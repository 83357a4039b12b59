"""The exported file's log-mel front end: training's DFT, computed in two stages.

Training computes each frame's DFT as one convolution with a [2 x 201, 400] basis (``model.LogMel``):
20 M multiply-adds per 2.5 s window, a fifth of the default file's time. The exported graph computes
the same transform as a two-stage (Cooley-Tukey) DFT, 4 M multiply-adds: the 400-sample frame
read as a 20 x 20 grid (n = 20 n1 + n2), a 20-point DFT down each column (over n1), then for each of
its bins k1 a twiddled 20-point DFT along the rows (over n2), giving bins k = k1 + 20 k2. Its
twiddles are exact (float64, rounded once to float32) where training's basis is rounded to float16,
so its log-mel values sit closer to the exact ones than training's do; the two differ by a few
thousandths typically (tests/test_factored_frontend.py measures both).

The front end is swapped into an exported file after export and after quantization (quantization
never touches it: it stays float), replacing every node named ``/frontend/...``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from emovox.train.model import FrontendSpec, mel_filterbank

PREFIX = "/frontend/"
OUTPUT = PREFIX + "log_mel"
DESCRIPTION = ("log-mel in the graph, its DFT computed in two stages with exact twiddles (train/factored_frontend.py); "
               "training's features come from a float16-rounded DFT basis, a few thousandths away in log-mel")
"""What a file's metadata says of its front end (``frontend_graph``)."""


def factor_pair(n_fft: int, hop: int) -> tuple[int, int]:
    """(n1, n2) with n1 * n2 = n_fft and n2 dividing the hop, so that every frame starts on a row of a
    [rows, n2] view of the waveform; the pair with the least n1 + n2, which the two stages cost."""
    pairs = [(n_fft // n2, n2) for n2 in range(2, n_fft // 2 + 1) if n_fft % n2 == 0 and hop % n2 == 0]
    if not pairs:
        raise ValueError(f"a {n_fft}-sample frame at a {hop}-sample hop has no two-stage factoring")
    return min(pairs, key=sum)


def factored_log_mel(spec: FrontendSpec, window_samples: int,
                     input_name: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes computing ``model.LogMel`` from ``input_name`` (float32 [batch, window_samples]) into
    ``OUTPUT`` ([batch, n_mels, frames]), and the constants they read. The larger tables (the second
    stage's twiddles and its matrix, the frames' rows, the window repeated for every frame, the mel
    filters with their columns in (k1, k2) order) are built by nodes that ONNX Runtime folds once at
    load, so the file stores the mel filters (51 kB) and 7 kB besides."""
    n_fft, hop = spec.n_fft, spec.hop_length
    n1, n2 = factor_pair(n_fft, hop)
    frames, rows = spec.n_frames(window_samples), window_samples // n2
    n_k2 = -(-spec.n_bins // n1)  # second-stage bins per first-stage bin: k = k1 + n1 * k2 covers 0..n_bins-1

    tables: dict[str, np.ndarray] = {}

    def const(name: str, value: np.ndarray) -> str:
        tables[PREFIX + name] = value
        return PREFIX + name

    n = np.arange(n_fft)
    const("window", (0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)).reshape(n1, 1, n2).astype(np.float32))
    first = 2 * np.pi * (np.outer(np.arange(n1), np.arange(n1)) % n1) / n1
    const("first", np.concatenate([np.cos(first), -np.sin(first)]).astype(np.float32))  # real rows, then imaginary
    const("k1", np.arange(n1).reshape(n1, 1, 1))
    const("column", np.arange(n2).reshape(1, n2, 1))
    const("n1_k2", n1 * np.arange(n_k2).reshape(1, 1, n_k2))
    const("n_fft", np.array(n_fft, np.int64))
    const("radians_per_step", np.array(2 * np.pi / n_fft, np.float64))
    const("quarter_turn", np.array(np.pi / 2, np.float64))
    const("row_in_frame", np.arange(n1).reshape(n1, 1))
    const("frame_first_row", (hop // n2) * np.arange(frames).reshape(1, frames))
    const("mel", mel_filterbank(spec))
    const("mel_pad", np.array([0, 0, 0, n1 * n_k2 - spec.n_bins], np.int64))
    const("mel_grid", np.array([spec.n_mels, n_k2, n1], np.int64))
    const("mel_flat", np.array([spec.n_mels, n1 * n_k2], np.int64))
    const("row_view", np.array([-1, rows, n2], np.int64))
    const("column_view", np.array([-1, n1, frames * n2], np.int64))
    const("part_view", np.array([-1, 2, n1, frames, n2], np.int64))
    const("grid_view", np.array([-1, n1, frames, 2 * n2], np.int64))
    const("grid_shape", np.array([n1, frames, n2], np.int64))
    const("bin_view", np.array([-1, n1 * n_k2, frames], np.int64))
    const("halves", np.array([n_k2, n_k2], np.int64))
    const("floor", np.array(spec.log_floor, np.float32))

    nodes: list[onnx.NodeProto] = []

    def node(op: str, inputs: list[str], output: str, **attrs) -> str:
        nodes.append(helper.make_node(op, [i if i.startswith(PREFIX) else PREFIX + i for i in inputs],
                                      [output if output.startswith(PREFIX) else PREFIX + output],
                                      name=PREFIX + output.removeprefix(PREFIX), **attrs))
        return nodes[-1].output[0]

    # folded at load. The second stage's twiddles: the phase index (k1 + n1 k2) * column reduced mod
    # n_fft in integers, so the float64 phase is one rounding away; cosines are sines a quarter turn
    # on (ONNX Runtime's CPU had no float64 Cos before 1.29); each rounded once to float32.
    node("Add", ["k1", "n1_k2"], "bin")
    node("Mul", ["bin", "column"], "bin_times_column")
    node("Mod", ["bin_times_column", "n_fft"], "phase_index")
    node("Cast", ["phase_index"], "phase_steps", to=onnx.TensorProto.DOUBLE)
    node("Mul", ["phase_steps", "radians_per_step"], "phase")
    node("Add", ["phase", "quarter_turn"], "phase_plus_quarter")
    node("Sin", ["phase"], "sin64")
    node("Sin", ["phase_plus_quarter"], "cos64")
    node("Cast", ["sin64"], "second_sin", to=onnx.TensorProto.FLOAT)
    node("Cast", ["cos64"], "second_cos", to=onnx.TensorProto.FLOAT)
    node("Add", ["row_in_frame", "frame_first_row"], "frame_rows")  # [n1, frames]: each frame's rows
    # The second stage's matrix maps [Re Z, Im Z] to [Re X, Im X] (e^{-i phi} = cos - i sin)
    node("Neg", ["second_sin"], "second_minus_sin")
    node("Concat", ["second_cos", "second_minus_sin"], "second_from_re", axis=2)
    node("Concat", ["second_sin", "second_cos"], "second_from_im", axis=2)
    node("Concat", ["second_from_re", "second_from_im"], "second", axis=1)  # [n1, 2 n2, 2 n_k2]
    node("Expand", ["window", "grid_shape"], "window_grid")
    node("Pad", ["mel", "mel_pad"], "mel_padded")
    node("Reshape", ["mel_padded", "mel_grid"], "mel_by_k2")
    node("Transpose", ["mel_by_k2"], "mel_by_k1", perm=[0, 2, 1])
    node("Reshape", ["mel_by_k1", "mel_flat"], "mel_reordered")
    # per window
    wave = input_name
    if rows * n2 != window_samples:  # the samples after the last whole row are in no frame
        wave = PREFIX + "audio"
        bounds = [const("zero", np.array([0], np.int64)), const("samples", np.array([rows * n2], np.int64)),
                  const("time_axis", np.array([1], np.int64))]
        nodes.append(helper.make_node("Slice", [input_name, *bounds], [wave], name=wave))
    nodes.append(helper.make_node("Reshape", [wave, PREFIX + "row_view"], [PREFIX + "rows"], name=PREFIX + "rows"))
    node("Gather", ["rows", "frame_rows"], "frame_grid", axis=1)  # [B, n1, frames, n2]
    node("Mul", ["frame_grid", "window_grid"], "windowed")
    node("Reshape", ["windowed", "column_view"], "columns")
    node("MatMul", ["first", "columns"], "z_flat")  # [B, 2 n1, frames n2]
    node("Reshape", ["z_flat", "part_view"], "z_parts")  # [B, 2, n1, frames, n2]
    node("Transpose", ["z_parts"], "z_by_bin", perm=[0, 2, 3, 1, 4])
    node("Reshape", ["z_by_bin", "grid_view"], "z")  # [B, n1, frames, 2 n2]: real, then imaginary
    node("MatMul", ["z", "second"], "spectrum")  # [B, n1, frames, 2 n_k2]: real bins, then imaginary
    nodes.append(helper.make_node("Split", [PREFIX + "spectrum", PREFIX + "halves"],
                                  [PREFIX + "real", PREFIX + "imag"], name=PREFIX + "split", axis=3))
    node("Mul", ["real", "real"], "real_sq")
    node("Mul", ["imag", "imag"], "imag_sq")
    node("Add", ["real_sq", "imag_sq"], "power")
    node("Transpose", ["power"], "power_by_bin", perm=[0, 1, 3, 2])
    node("Reshape", ["power_by_bin", "bin_view"], "power_bins")
    node("MatMul", ["mel_reordered", "power_bins"], "mel_power")
    node("Add", ["mel_power", "floor"], "mel_floored")
    node("Log", ["mel_floored"], OUTPUT)
    return nodes, [numpy_helper.from_array(value, name) for name, value in tables.items()]


def front_end_of(path: Path) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """An exported file's front end: its ``/frontend/`` nodes and the constants they read."""
    graph = onnx.load(str(path)).graph
    nodes = [node for node in graph.node if node.name.startswith(PREFIX)]
    read = {name for node in nodes for name in node.input}
    return nodes, [init for init in graph.initializer if init.name in read]


def put_front_end(path: Path, nodes: list[onnx.NodeProto], initializers: list[onnx.TensorProto]) -> None:
    """Replace the file's front end (every ``/frontend/`` node) by ``nodes``, whose last output feeds
    what the old front end's output fed. Refused if the old front end hands on anything but one tensor
    (the exporter may name a constant it shares with the network after the front end: the network
    keeps that constant node)."""
    model = onnx.load(str(path))
    graph = model.graph
    old = [node for node in graph.node if node.name.startswith(PREFIX)]
    kept = [node for node in graph.node if not node.name.startswith(PREFIX)]
    read_by_network = {name for node in kept for name in node.input}
    for node in [node for node in old if node.op_type == "Constant" and set(node.output) & read_by_network]:
        old.remove(node)
        node.name = "/network" + node.name  # no longer a front-end node, for this swap or a later one
        kept.insert(0, node)
    produced = {name for node in old for name in node.output}
    handed_on = {name for node in kept for name in node.input if name in produced}
    if len(handed_on) != 1:
        raise ValueError(f"{path}: the front end should hand one tensor to the network, found {sorted(handed_on)}")
    (old_output,) = handed_on
    new_output = nodes[-1].output[0]
    for node in kept:
        node.input[:] = [new_output if name == old_output else name for name in node.input]
    still_read = {name for node in kept for name in node.input}
    stale = [init for init in graph.initializer if init.name not in still_read]
    for init in stale:
        graph.initializer.remove(init)
    clash = {init.name for init in graph.initializer} & {init.name for init in initializers}
    if clash:
        raise ValueError(f"{path}: the network already holds constants named {sorted(clash)}")
    for info in [info for info in graph.value_info if info.name in produced]:
        graph.value_info.remove(info)
    del graph.node[:]
    graph.node.extend(list(nodes) + kept)  # the front end reads only the input and its constants
    graph.initializer.extend(initializers)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def factor_front_end(path: Path, spec: FrontendSpec, window_samples: int, input_name: str) -> None:
    """Swap an exported file's front end for the two-stage one."""
    put_front_end(path, *factored_log_mel(spec, window_samples, input_name))
