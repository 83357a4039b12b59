"""Several backbones behind one front end: the file computes the members' mean calibrated probability,
and quantization treats each member as it treats a single model."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="export needs the [train] extra")
onnx = pytest.importorskip("onnx", reason="export needs the [train] extra")
ort = pytest.importorskip("onnxruntime")

from emovox.train.ensemble import EnsembleBackbone, ensemble_model  # noqa: E402
from emovox.train.export import export_fp32, quantize_int8  # noqa: E402
from emovox.train.model import CNNLSTM, EmotionModel, FrontendSpec  # noqa: E402

WINDOW = 40000
SPEC = FrontendSpec()
TEMPERATURES = [1.2, 0.8]


def _members() -> list[CNNLSTM]:
    torch.manual_seed(0)
    return [CNNLSTM(SPEC.n_mels, 8).eval(), CNNLSTM(SPEC.n_mels, 8, window_mean=True).eval()]


def _voiced_windows(count: int) -> np.ndarray:
    """Harmonic tones with a moving pitch and some noise: enough spectral shape to tell members apart."""
    rng = np.random.default_rng(0)
    t = np.arange(WINDOW) / SPEC.sample_rate
    windows = []
    for _ in range(count):
        pitch = rng.uniform(100, 300) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
        phase = 2 * np.pi * np.cumsum(pitch) / SPEC.sample_rate
        tone = sum(np.sin(k * phase) / k for k in range(1, 6))
        windows.append(0.1 * tone + 0.01 * rng.standard_normal(WINDOW))
    return np.stack(windows).astype(np.float32)


def _run(path: Path, windows: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"audio": windows})[0]


def test_the_output_is_the_members_mean_tempered_probability() -> None:
    members = _members()
    model = ensemble_model(SPEC, members, TEMPERATURES)
    windows = torch.from_numpy(_voiced_windows(4))
    with torch.no_grad():
        mels = model.frontend(windows)
        expected = sum(torch.softmax(m(mels) / t, dim=-1) for m, t in zip(members, TEMPERATURES)) / 2
        probs = model(windows)
    assert torch.allclose(probs, expected, atol=1e-6)
    assert torch.allclose(probs.sum(dim=-1), torch.ones(4), atol=1e-6)


def test_one_member_at_temperature_one_is_the_single_model() -> None:
    member = _members()[0]
    single = EmotionModel(SPEC, 8).eval()
    single.backbone.load_state_dict(member.state_dict())
    windows = torch.from_numpy(_voiced_windows(2))
    with torch.no_grad():
        assert torch.allclose(ensemble_model(SPEC, [member], [1.0])(windows), single(windows), atol=1e-6)


@pytest.mark.parametrize("temperatures", [[1.0], [1.0, -1.0], [1.0, float("nan")], [1.0, 1.0, 1.0]])
def test_two_members_need_two_positive_temperatures(temperatures: list[float]) -> None:
    with pytest.raises(ValueError):
        EnsembleBackbone(_members(), temperatures)


def test_an_ensemble_needs_a_member() -> None:
    with pytest.raises(ValueError):
        EnsembleBackbone([], [])


def test_the_int8_file_keeps_each_members_first_convolution_float(tmp_path: Path) -> None:
    model = ensemble_model(SPEC, _members(), TEMPERATURES)
    windows = _voiced_windows(8)
    fp32, int8 = tmp_path / "ensemble.fp32.onnx", tmp_path / "ensemble.int8.onnx"
    export_fp32(model, fp32, WINDOW)
    quantize_int8(fp32, int8, windows)
    with torch.no_grad():
        reference = model(torch.from_numpy(windows)).numpy()
    np.testing.assert_allclose(_run(fp32, windows), reference, atol=1e-5)
    graph = onnx.load(str(int8)).graph
    produced_by = {output: node.op_type for node in graph.node for output in node.output}
    weight_source = {node.name: produced_by.get(node.input[1], "initializer")
                     for node in graph.node if node.op_type == "Conv" and "/members." in node.name}
    first = {name: source for name, source in weight_source.items() if "/convs/convs.0/" in name}
    later = {name: source for name, source in weight_source.items() if name not in first}
    assert len(first) == 2 and set(first.values()) == {"initializer"}
    assert len(later) == 4 and set(later.values()) == {"DequantizeLinear"}
    probs = _run(int8, windows)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
