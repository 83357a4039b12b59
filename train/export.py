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
from onnx import numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_dynamic, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

from emovox.train.factored_frontend import factor_front_end, front_end_of, put_front_end
from emovox.train.model import EmotionModel

INPUT_NAME = "audio"
OUTPUT_NAME = "probs"
FLOAT_NODES = re.compile(r"/frontend/|/backbone/(members\.\d+/)?convs/convs\.0/")
"""The front end, and the first convolution of the backbone or of each ensemble member's."""
# ORT's QDQPropagationTransformer moves the first QuantizeLinear above the first max-pool,
# which then runs as a generic int8 MaxPool: 0.39 ms of a 1.5 ms window. Without it the
# int8 file runs at 0.87x the fp32 time instead of 1.18x, with identical outputs.
ORT_DISABLED_OPTIMIZERS = ["QDQPropagationTransformer"]


def export_fp32(model: EmotionModel, path: Path, window_samples: int, static_shapes: bool = True) -> None:
    """TorchScript-based export: it maps nn.LSTM onto the ONNX LSTM op, which ORT
    can quantize dynamically (the dynamo exporter unrolls it into loops). The front end is then
    swapped for the two-stage DFT (``factored_frontend``): the same DFT at a fifth of the multiply-adds.
    ``static_shapes`` False keeps the exporter's run-time shape arithmetic (``make_shapes_static``),
    as files were exported before session 31: for comparisons only."""
    model = model.eval()
    example = torch.zeros(1, window_samples)
    torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=17,
                      input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                      dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    factor_front_end(path, model.frontend.spec, window_samples, INPUT_NAME)
    if static_shapes:
        make_shapes_static(path)


def make_shapes_static(path: Path) -> None:
    """Constants where the TorchScript exporter computes shapes at run time, for the very same
    outputs: each network's conv-to-LSTM reshape ([B, T, C, F] -> [B, T, C * F]) gets the target
    [0, 0, -1], and its LSTM drops the all-zero initial states it was handed (ONNX's default).
    The shape arithmetic behind them (Shape, Gather, Unsqueeze, Concat, ConstantOfShape: 15 nodes a
    network in an int8 file) goes: 1-4 % of the default's time per window on one thread (session 31)."""
    model = onnx.load(str(path))
    graph = model.graph
    producer = {name: node for node in graph.node for name in node.output}

    def made_by(name: str, op_type: str) -> bool:
        return name in producer and producer[name].op_type == op_type

    def steps_of_feature_maps(name: str) -> bool:  # x.permute(0, 3, 1, 2): [B, C, F, T] -> [B, T, C, F]
        return made_by(name, "Transpose") and any(
            a.name == "perm" and list(a.ints) == [0, 3, 1, 2] for a in producer[name].attribute)

    for node in graph.node:
        if node.op_type in ("LSTM", "DynamicQuantizeLSTM"):  # an fp32 file, or an int8 one shipped before
            inputs = ["" if i in (5, 6) and made_by(name, "ConstantOfShape") else name
                      for i, name in enumerate(node.input)]
            while inputs and not inputs[-1]:
                inputs.pop()
            del node.input[:]
            node.input.extend(inputs)
        elif node.op_type == "Reshape" and made_by(node.input[1], "Concat") and steps_of_feature_maps(node.input[0]):
            target = node.name + "/static_shape"
            graph.initializer.append(numpy_helper.from_array(np.array([0, 0, -1], dtype=np.int64), target))
            node.input[1] = target
    while True:  # what fed only the replaced inputs
        read = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
        unread = [node for node in graph.node if not set(node.output) & read]
        if not unread:
            break
        for node in unread:
            graph.node.remove(node)
    read = {name for node in graph.node for name in node.input}
    for init in [init for init in graph.initializer if init.name not in read]:
        graph.initializer.remove(init)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


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


def quantize_int8(fp32_path: Path, int8_path: Path, calibration_windows: np.ndarray,
                  activations: QuantType = QuantType.QInt8) -> None:
    """fp32 ONNX -> int8: static QDQ convolutions, dynamic LSTM/MatMul/Gemm. ``activations``: the
    convolutions' activation type (uint8 only for comparisons: ORT converts int8 to it on AVX2)."""
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        static = Path(tmp) / "static.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        excluded = _float_nodes(onnx.load(str(prepared)))
        quantize_static(str(prepared), str(static), _WindowReader(calibration_windows),
                        quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
                        nodes_to_exclude=excluded, per_channel=True,
                        activation_type=activations, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        quantize_dynamic(str(static), str(int8_path), op_types_to_quantize=["LSTM", "MatMul", "Gemm"],
                         nodes_to_exclude=excluded, weight_type=QuantType.QInt8)
    put_front_end(int8_path, *front_end_of(fp32_path))  # quant_pre_process folded what it builds at load
