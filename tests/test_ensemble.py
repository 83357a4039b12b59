"""Several backbones behind one front end: the file computes the members' mean calibrated probability,
and quantization treats each member as it treats a single model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="export needs the [train] extra")
onnx = pytest.importorskip("onnx", reason="export needs the [train] extra")
ort = pytest.importorskip("onnxruntime")

from emovox.train.cli import main as ser_train  # noqa: E402
from emovox.train.ensemble import EnsembleBackbone, ensemble_model, shipped_model  # noqa: E402
from emovox.train.export import export_fp32, quantize_int8  # noqa: E402
from emovox.train.model import CNNLSTM, EmotionModel, FrontendSpec  # noqa: E402
from tests.conftest import DATA, Recording, read_events, run_ser_live  # noqa: E402

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


def test_the_ensembles_own_temperature_recalibrates_the_mean() -> None:
    members = _members()
    windows = torch.from_numpy(_voiced_windows(4))
    with torch.no_grad():
        mean = ensemble_model(SPEC, members, TEMPERATURES)(windows)
        sharpened = ensemble_model(SPEC, members, TEMPERATURES, temperature=0.5)(windows)
    assert torch.allclose(sharpened, torch.softmax(torch.log(mean) / 0.5, dim=-1), atol=1e-6)
    assert torch.equal(sharpened.argmax(-1), mean.argmax(-1))  # one window's ranking is unchanged


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


def test_ship_an_ensemble_end_to_end(tmp_path: Path, three_utterances: Recording) -> None:
    out, results, cache = tmp_path / "model", tmp_path / "results", tmp_path / "cache"
    status = ser_train(["ship", "--data", str(DATA), "--corpora", "ravdess", "--limit-per-speaker", "2",
                        "--folds", "1,2", "--epochs", "1", "--out", str(out), "--results", str(results),
                        "--cache", str(cache), "--name", "pair", "--ensemble", "window-mean,default"])
    assert status == 0
    cv = json.loads((results / "ravdess_cv.json").read_text())
    assert all(len(f["member_temperatures"]) == 2 and f["temperature"] > 0 for f in cv["folds"])
    assert len(cv["member_temperatures_mean"]) == 2
    metadata = json.loads((out / "pair.int8.json").read_text())
    assert "train" not in metadata and metadata["temperature"] == cv["temperature_mean"]  # the ensemble's own
    members = metadata["members"]  # sorted: the same pair in any order is one model
    assert [m["train"]["window_mean"] for m in members] == [False, True]
    assert [m["temperature"] for m in members] == cv["member_temperatures_mean"]
    assert all(m["network"] == {"channels": [16, 32, 48], "hidden": 64} for m in members)  # the shape it reloads at
    assert metadata["sizes_bytes"]["int8"] < 1_000_000 and metadata["shipped_parity"]["same_top1"] >= 0.75
    assert metadata["training_data"] == {"ravdess": {"files": 48, "speakers": 24, "licence": "CC BY-NC-SA 4.0"}}
    model = shipped_model(metadata, out / "pair.pt")  # the saved weights load into the graph the metadata describes
    windows = _voiced_windows(3)
    with torch.no_grad():  # to 1e-4: the file's exact DFT against training's float16-rounded basis
        np.testing.assert_allclose(_run(out / "pair.fp32.onnx", windows), model(torch.from_numpy(windows)).numpy(),
                                   atol=1e-4)
    events_file = tmp_path / "events.jsonl"
    result = run_ser_live("--file", str(three_utterances.path), "--fast", "--no-dashboard",
                          "--model", str(out / "pair.int8.onnx"), "--json", str(events_file))
    assert result.returncode == 0, result.stderr
    assert sum(e["type"] == "utterance_end" for e in read_events(events_file)) == 3


@pytest.mark.parametrize("flags, message", [
    (["--ensemble", "default"], "two or more distinct"),
    (["--ensemble", "default,default"], "two or more distinct"),
    (["--ensemble", "default,nope"], "two or more distinct"),
    (["--ensemble", "default,window-mean", "--noise-probability", "0.3"], "members' own settings"),
    (["--ensemble", "corpus-heads,window-mean", "--corpus-heads"], "every member has them"),
])
def test_a_bad_ensemble_is_a_usage_error(flags: list[str], message: str, capsys) -> None:
    assert ser_train(["cv", "--data", str(DATA), "--corpora", "ravdess", "--limit-per-speaker", "1", *flags]) == 2
    assert message in capsys.readouterr().err
