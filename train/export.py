"""Export to ONNX, int8 quantization that actually speeds up ONNX Runtime, and the parity check.

Quantization recipe (see DESIGN.md): ORT's dynamic int8 convolutions (ConvInteger)
are slower than fp32, so convolutions are quantized *statically* (QDQ, per-channel
weights, activations calibrated on real training windows), and the LSTM and
MatMul/Gemm layers *dynamically*. Kept float: the log-mel front end (int8 audio
would cost ~48 dB of dynamic range) and the first convolution, whose input is the
normalised log-mel: quantizing it alone flipped 4 of 240 held-out files (fold 1)
against PyTorch, versus 1 without it.
"""
from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_dynamic, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

from emovox.train.model import EmotionModel

INPUT_NAME = "audio"
OUTPUT_NAME = "probs"
FLOAT_NODES = re.compile(r"/frontend/|/backbone/(members\.\d+/)?convs/convs\.0/")
"""The front end, and the first convolution of the backbone or of each ensemble member's."""
# ORT's QDQPropagationTransformer moves the first QuantizeLinear above the first max-pool,
# which then runs as a generic int8 MaxPool: 0.39 ms of a 1.5 ms window. Without it the
# int8 file runs at 0.87x the fp32 time instead of 1.18x, with identical outputs.
ORT_DISABLED_OPTIMIZERS = ["QDQPropagationTransformer"]
DFT_INITIALIZER = "frontend.dft"
GENERATOR_PREFIX = "/frontend/dft_gen/"


def export_fp32(model: EmotionModel, path: Path, window_samples: int) -> None:
    """TorchScript-based export: it maps nn.LSTM onto the ONNX LSTM op, which ORT
    can quantize dynamically (the dynamo exporter unrolls it into loops)."""
    model = model.eval()
    example = torch.zeros(1, window_samples)
    torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=17,
                      input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                      dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    generate_dft_at_load(path)


def generate_dft_at_load(path: Path) -> None:
    """Replace the stored DFT basis by the few nodes that compute it, folded once at session load.

    The basis is the file's largest tensor (321 kB in float16 at 25 ms frames, 822 kB at 40 ms);
    two dozen small nodes compute it instead. They compute what ``dft_basis`` does, in float64,
    then round to float16 as training did. ORT's double -> float16 Cast rounds through float32, so
    about one entry in 10^4 lands one float16 step away from numpy's rounding (none at 25 ms);
    the generated basis is checked against the stored one before it replaces it.
    """
    model = onnx.load(str(path))
    graph = model.graph
    if any(node.name.startswith(GENERATOR_PREFIX) for node in graph.node):
        raise ValueError(f"{path}: its DFT basis is already computed at load")
    replaced = next((init for init in graph.initializer if init.name == DFT_INITIALIZER), None)
    if replaced is None:
        raise ValueError(f"{path}: no {DFT_INITIALIZER} initializer to replace")
    basis = numpy_helper.to_array(replaced).astype(np.float32)
    n_rows, _, taps = basis.shape
    nodes, constants = _dft_generator(n_rows // 2, taps)
    generated = _run_generator(nodes, constants)
    if generated.shape != basis.shape or not _same_basis(generated, basis):
        raise ValueError(f"{path}: the generated DFT basis differs from the stored one")
    graph.initializer.remove(replaced)
    graph.initializer.extend(constants)
    for position, node in enumerate(nodes):
        graph.node.insert(position, node)
    onnx.save(model, str(path))


def _same_basis(generated: np.ndarray, stored: np.ndarray) -> bool:
    """Float16 values throughout, and off the stored ones by at most one float16 step in at most
    one entry in 1000 (the double -> float -> half rounding)."""
    in_float16 = np.array_equal(generated.astype(np.float16).astype(np.float32), generated)
    step = np.spacing(np.abs(stored).astype(np.float16)).astype(np.float32)
    off = generated != stored
    return in_float16 and bool(np.all(np.abs(generated - stored) <= step)) and off.mean() <= 1e-3


def _dft_generator(n_bins: int, taps: int) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes computing ``dft_basis`` ([2 * n_bins, 1, taps]: Hann-windowed cos, then -sin), output
    ``DFT_INITIALIZER``, and the scalar constants they read. The phase k*n is reduced mod n_fft in
    integers first, so its float64 error stays at one rounding whatever k*n is. Cosines are sines a
    quarter turn on: ONNX Runtime had no float64 Cos kernel on the CPU before 1.29, and has Sin."""
    p = GENERATOR_PREFIX

    def const(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(value, p + name)

    constants = [const("zero", np.array(0, np.int64)), const("one", np.array(1, np.int64)),
                 const("bins", np.array(n_bins, np.int64)), const("taps", np.array(taps, np.int64)),
                 const("axis0", np.array([0], np.int64)), const("axis1", np.array([1], np.int64)),
                 const("two_pi_over_taps", np.array(2 * np.pi / taps, np.float64)),
                 const("half", np.array(0.5, np.float64)), const("half_pi", np.array(np.pi / 2, np.float64))]

    def node(op: str, inputs: list[str], output: str, **attrs) -> onnx.NodeProto:
        return helper.make_node(op, [i if i.startswith(p) else p + i for i in inputs], [p + output],
                                name=p + output, **attrs)

    nodes = [
        node("Range", ["zero", "bins", "one"], "k"),
        node("Range", ["zero", "taps", "one"], "n"),
        node("Unsqueeze", ["k", "axis1"], "k_col"),
        node("Unsqueeze", ["n", "axis0"], "n_row"),
        node("Mul", ["k_col", "n_row"], "kn"),
        node("Mod", ["kn", "taps"], "kn_mod"),
        node("Cast", ["kn_mod"], "kn_float", to=onnx.TensorProto.DOUBLE),
        node("Mul", ["kn_float", "two_pi_over_taps"], "phase"),
        node("Cast", ["n"], "n_float", to=onnx.TensorProto.DOUBLE),
        node("Mul", ["n_float", "two_pi_over_taps"], "window_phase"),
        node("Add", ["window_phase", "half_pi"], "window_phase_shifted"),
        node("Sin", ["window_phase_shifted"], "window_cos"),
        node("Mul", ["window_cos", "half"], "window_half_cos"),
        node("Sub", ["half", "window_half_cos"], "window"),
        node("Add", ["phase", "half_pi"], "phase_shifted"),
        node("Sin", ["phase_shifted"], "cos"),
        node("Sin", ["phase"], "sin"),
        node("Mul", ["cos", "window"], "real"),
        node("Mul", ["sin", "window"], "sin_windowed"),
        node("Neg", ["sin_windowed"], "imag"),
        node("Concat", ["real", "imag"], "basis", axis=0),
        node("Cast", ["basis"], "basis_fp16", to=onnx.TensorProto.FLOAT16),
        node("Cast", ["basis_fp16"], "basis_fp32", to=onnx.TensorProto.FLOAT),
    ]
    nodes.append(helper.make_node("Unsqueeze", [p + "basis_fp32", p + "axis1"], [DFT_INITIALIZER],
                                  name=p + "dft"))
    return nodes, constants


def _run_generator(nodes: list[onnx.NodeProto], constants: list[onnx.TensorProto]) -> np.ndarray:
    """The basis the generator nodes compute, run alone in ORT."""
    import onnxruntime as ort

    graph = helper.make_graph(nodes, "dft_generator", [],
                              [helper.make_tensor_value_info(DFT_INITIALIZER, onnx.TensorProto.FLOAT, None)],
                              initializer=constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {})[0]


class _WindowReader(CalibrationDataReader):
    """Feeds calibration windows one at a time (ORT's histogram collector needs equal batch shapes)."""

    def __init__(self, windows: np.ndarray, batch: int = 1) -> None:
        self._batches: Iterator[np.ndarray] = iter(
            [windows[i:i + batch] for i in range(0, len(windows), batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch.astype(np.float32)}


def _float_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes that stay float: the front end and the first convolution."""
    return [node.name for node in model.graph.node if FLOAT_NODES.match(node.name)]


def quantize_int8(fp32_path: Path, int8_path: Path, calibration_windows: np.ndarray) -> None:
    """fp32 ONNX -> int8: static QDQ convolutions, dynamic LSTM/MatMul/Gemm."""
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        static = Path(tmp) / "static.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        excluded = _float_nodes(onnx.load(str(prepared)))
        quantize_static(str(prepared), str(static), _WindowReader(calibration_windows),
                        quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
                        nodes_to_exclude=excluded, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        quantize_dynamic(str(static), str(int8_path), op_types_to_quantize=["LSTM", "MatMul", "Gemm"],
                         nodes_to_exclude=excluded, weight_type=QuantType.QInt8)
    generate_dft_at_load(int8_path)  # quant_pre_process folded the generator back into a stored basis
