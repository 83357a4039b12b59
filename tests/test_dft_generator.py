"""The exported file computes its DFT basis at load instead of storing it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="export needs the [train] extra")
onnx = pytest.importorskip("onnx", reason="export needs the [train] extra")
ort = pytest.importorskip("onnxruntime")

from onnx import numpy_helper  # noqa: E402

from emovox.train.export import DFT_INITIALIZER, export_fp32, generate_dft_at_load  # noqa: E402
from emovox.train.model import EmotionModel, FrontendSpec  # noqa: E402

WINDOW = 40000


def _exported(tmp_path: Path, win_length: int) -> tuple[EmotionModel, Path]:
    torch.manual_seed(0)
    model = EmotionModel(FrontendSpec(win_length=win_length), 8).eval()
    path = tmp_path / f"frames{win_length}.onnx"
    export_fp32(model, path, WINDOW)
    return model, path


@pytest.mark.parametrize("win_length", [400, 640])  # 25 ms (shipped), 40 ms (experiment #25)
def test_the_file_stores_no_basis_and_runs_as_pytorch(tmp_path: Path, win_length: int) -> None:
    model, path = _exported(tmp_path, win_length)
    shapes = [tuple(init.dims) for init in onnx.load(str(path)).graph.initializer]
    assert tuple(model.frontend.dft.shape) not in shapes and (2 * (win_length // 2 + 1), win_length) not in shapes
    audio = np.random.default_rng(1).standard_normal((2, WINDOW)).astype(np.float32) * 0.1
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(torch.from_numpy(audio)).numpy()
    np.testing.assert_allclose(session.run(None, {"audio": audio})[0], expected, atol=1e-5)


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
