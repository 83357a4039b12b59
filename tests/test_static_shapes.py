"""Exported files carry constant shapes, not the exporter's run-time shape arithmetic, and compute
exactly what they computed with it, at any batch size."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="export needs the [train] extra")
onnx = pytest.importorskip("onnx", reason="export needs the [train] extra")
ort = pytest.importorskip("onnxruntime")

from emovox.realtime.model import bundled_model_path  # noqa: E402
from emovox.train.ensemble import ensemble_model  # noqa: E402
from emovox.train.export import INPUT_NAME, export_fp32, make_shapes_static, quantize_int8  # noqa: E402
from emovox.train.model import CNNLSTM, EmotionModel, FrontendSpec  # noqa: E402

WINDOW = 40000
SPEC = FrontendSpec()
RUN_TIME_SHAPES = {"Shape", "ConstantOfShape"}


def _run(path: Path, windows: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {INPUT_NAME: windows})[0]


def _op_types(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def _models() -> dict[str, EmotionModel]:
    torch.manual_seed(0)
    single = EmotionModel(SPEC, 8).eval()
    members = [CNNLSTM(SPEC.n_mels, 8).eval(), CNNLSTM(SPEC.n_mels, 8, window_mean=True).eval()]
    return {"single": single, "ensemble": ensemble_model(SPEC, members, [1.2, 0.8])}


@pytest.mark.parametrize("kind", ["single", "ensemble"])
def test_static_shapes_change_no_output_at_any_batch_size(tmp_path: Path, kind: str) -> None:
    windows = (np.random.default_rng(0).standard_normal((5, WINDOW)) * 0.1).astype(np.float32)
    before, after = tmp_path / "before.onnx", tmp_path / "after.onnx"
    export_fp32(_models()[kind], before, WINDOW, static_shapes=False)  # the file as the exporter writes it
    export_fp32(_models()[kind], after, WINDOW, static_shapes=False)
    make_shapes_static(after)
    assert RUN_TIME_SHAPES <= _op_types(before) and not RUN_TIME_SHAPES & _op_types(after)
    assert len(onnx.load(str(after)).graph.node) < len(onnx.load(str(before)).graph.node)
    for batch in (1, 2, 5):
        np.testing.assert_array_equal(_run(after, windows[:batch]), _run(before, windows[:batch]))
    int8_before, int8_after = tmp_path / "before.int8.onnx", tmp_path / "after.int8.onnx"
    quantize_int8(before, int8_before, windows)
    quantize_int8(after, int8_after, windows)
    assert not RUN_TIME_SHAPES & _op_types(int8_after)
    np.testing.assert_array_equal(_run(int8_after, windows), _run(int8_before, windows))


@pytest.mark.parametrize("name", ["default", "noise-robust", "phone"])
def test_the_bundled_files_carry_no_run_time_shape_arithmetic(name: str) -> None:
    assert not RUN_TIME_SHAPES & _op_types(bundled_model_path(name))
