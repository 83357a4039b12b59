"""The exported file computes its DFT basis at load instead of storing it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="export needs the [train] extra")
onnx = pytest.importorskip("onnx", reason="export needs the [train] extra")
ort = pytest.importorskip("onnxruntime")

from onnx import numpy_helper  # noqa: E402

from emovox.train.export import (DFT_INITIALIZER, GENERATOR_PREFIX, _dft_generator, _run_generator,  # noqa: E402
                                 export_fp32, generate_dft_at_load, quantize_int8)
from emovox.train.model import EmotionModel, FrontendSpec, dft_basis  # noqa: E402

WINDOW = 40000
FRAMES = [400, 640]  # 25 ms (shipped), 40 ms (experiment #25)


def _exported(tmp_path: Path, win_length: int) -> tuple[EmotionModel, Path]:
    torch.manual_seed(0)
    model = EmotionModel(FrontendSpec(win_length=win_length), 8).eval()
    path = tmp_path / f"frames{win_length}.onnx"
    export_fp32(model, path, WINDOW)
    return model, path


def _generator_nodes(path: Path) -> list[str]:
    return [node.name for node in onnx.load(str(path)).graph.node if node.name.startswith(GENERATOR_PREFIX)]


@pytest.mark.parametrize("win_length", FRAMES)
def test_the_generator_computes_the_training_basis(win_length: int) -> None:
    spec = FrontendSpec(win_length=win_length)
    expected = dft_basis(spec)[:, None, :]  # cos rows, then -sin rows: a sign slip would show here
    generated = _run_generator(*_dft_generator(spec.n_bins, win_length))
    assert generated.shape == expected.shape
    off = generated != expected
    # 25 ms: every entry; 40 ms: 32 of 410,880 one float16 step away (ORT rounds double -> float -> half)
    assert off.mean() <= (0 if win_length == 400 else 1e-4)
    assert np.all(np.abs(generated - expected)[off] <= 2.0 ** -11)


@pytest.mark.parametrize("win_length", FRAMES)
def test_the_file_stores_no_basis_and_runs_as_pytorch(tmp_path: Path, win_length: int) -> None:
    model, path = _exported(tmp_path, win_length)
    stored = onnx.load(str(path)).graph.initializer
    assert DFT_INITIALIZER not in {init.name for init in stored}
    assert model.frontend.dft.numel() not in {int(np.prod(init.dims)) for init in stored}
    audio = np.random.default_rng(1).standard_normal((2, WINDOW)).astype(np.float32) * 0.1
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(torch.from_numpy(audio)).numpy()
    np.testing.assert_allclose(session.run(None, {"audio": audio})[0], expected, atol=1e-5)


def test_onnx_runtime_computes_the_basis_once_at_load(tmp_path: Path) -> None:
    _, path = _exported(tmp_path, 400)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(tmp_path / "as_loaded.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    ops = {node.op_type for node in onnx.load(str(tmp_path / "as_loaded.onnx")).graph.node}
    assert not ops & {"Range", "Sin", "Mod"}, ops  # folded into a constant: no cost per window


def test_the_int8_file_computes_its_basis_too(tmp_path: Path) -> None:
    _, fp32 = _exported(tmp_path, 400)
    int8 = tmp_path / "frames400.int8.onnx"
    calibration = np.random.default_rng(2).standard_normal((4, WINDOW)).astype(np.float32) * 0.1
    quantize_int8(fp32, int8, calibration)
    assert _generator_nodes(int8) == _generator_nodes(fp32) and _generator_nodes(int8)
    assert DFT_INITIALIZER not in {init.name for init in onnx.load(str(int8)).graph.initializer}


def test_a_file_that_already_computes_its_basis_is_refused(tmp_path: Path) -> None:
    _, path = _exported(tmp_path, 400)
    with pytest.raises(ValueError, match="already computed at load"):
        generate_dft_at_load(path)


def test_a_basis_the_generator_does_not_reproduce_is_refused(tmp_path: Path) -> None:
    basis = EmotionModel(FrontendSpec(), 8).frontend.dft.numpy().copy()
    basis[3, 0, 100] += 0.01  # far more than a float16 step
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", [DFT_INITIALIZER], ["out"])], "stored_basis", [],
        [onnx.helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(basis, DFT_INITIALIZER)])
    path = tmp_path / "stored.onnx"
    onnx.save(onnx.helper.make_model(graph), str(path))
    with pytest.raises(ValueError, match="differs from the stored one"):
        generate_dft_at_load(path)
