"""The exported file's two-stage DFT front end computes training's log-mel features."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="export needs the [train] extra")
onnx = pytest.importorskip("onnx", reason="export needs the [train] extra")
ort = pytest.importorskip("onnxruntime")

from emovox.train.corpora import read_audio  # noqa: E402
from emovox.train.export import INPUT_NAME, export_fp32, quantize_int8  # noqa: E402
from emovox.train.factored_frontend import (OUTPUT, PREFIX, factor_pair, factored_log_mel,  # noqa: E402
                                            front_end_of, put_front_end)
from emovox.train.model import EmotionModel, FrontendSpec, LogMel, mel_filterbank  # noqa: E402
from tests.conftest import ravdess  # noqa: E402

WINDOW = 40000
FRAMES = [400, 640]  # 25 ms (shipped), 40 ms (experiment #25)


def _speech_and_noise() -> np.ndarray:
    """Three windows: two of an actor's speech (one with its silent edges), one of white noise."""
    audio = read_audio(ravdess("03-01-05-02-01-01-01"))
    quiet_start = np.pad(audio, (8000, 0))[:WINDOW]
    noise = np.random.default_rng(0).standard_normal(WINDOW) * 0.05
    return np.stack([audio[8000:48000], quiet_start, noise]).astype(np.float32)


def _run_front_end(spec: FrontendSpec, windows: np.ndarray, outputs: tuple[str, ...] = (OUTPUT,)) -> list[np.ndarray]:
    """The front end alone, run in ONNX Runtime: its log-mel, or the named tensors inside it."""
    nodes, constants = factored_log_mel(spec, WINDOW, INPUT_NAME)
    graph = onnx.helper.make_graph(
        nodes, "front_end", [onnx.helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.FLOAT, ["batch", WINDOW])],
        [onnx.helper.make_empty_tensor_value_info(name) for name in outputs],
        initializer=constants)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT_NAME: windows})


def _exact_log_mel(spec: FrontendSpec, wave: np.ndarray) -> np.ndarray:
    """Float64 numpy: Hann window, real FFT, power, Slaney mel filters, log."""
    n = np.arange(spec.n_fft)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / spec.n_fft)
    frames = np.stack([wave[t * spec.hop_length:t * spec.hop_length + spec.n_fft]
                       for t in range(spec.n_frames(len(wave)))]).astype(np.float64)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return np.log(mel_filterbank(spec).astype(np.float64) @ power.T + spec.log_floor)


def test_the_factoring_suits_each_frame_length() -> None:
    assert factor_pair(400, 320) == (20, 20)
    n1, n2 = factor_pair(640, 320)
    assert n1 * n2 == 640 and 320 % n2 == 0 and n1 + n2 == 52
    with pytest.raises(ValueError, match="no two-stage factoring"):
        factor_pair(401, 320)


@pytest.mark.parametrize("win_length", FRAMES)
def test_it_computes_the_exact_log_mel_and_training_s_within_its_rounding(win_length: int) -> None:
    spec = FrontendSpec(win_length=win_length)
    windows = _speech_and_noise()
    (ours,) = _run_front_end(spec, windows)
    with torch.no_grad():
        training = LogMel(spec)(torch.from_numpy(windows)).numpy()
    exact = np.stack([_exact_log_mel(spec, w) for w in windows])
    assert ours.shape == training.shape == exact.shape
    assert np.abs(ours - exact).max() < 1e-3  # float32 rounding: measured 3e-5
    # training's basis is rounded to float16: a few thousandths typically, a few hundredths in the
    # quietest bands of a frame (measured over 40 RAVDESS files: median 0.003, worst 0.035)
    assert np.median(np.abs(training - exact)) < 1e-3 and np.abs(training - exact).max() < 0.1
    assert np.abs(ours - training).max() < 0.1


@pytest.mark.parametrize("win_length", FRAMES)
def test_the_tables_built_at_load_are_numpy_s(win_length: int) -> None:
    spec = FrontendSpec(win_length=win_length)
    n1, n2 = factor_pair(spec.n_fft, spec.hop_length)
    cos, sin, rows = _run_front_end(spec, _speech_and_noise(), tuple(PREFIX + name for name in
                                                                     ("second_cos", "second_sin", "frame_rows")))
    k1, column, k2 = np.ogrid[:n1, :n2, :cos.shape[2]]
    phase = 2 * np.pi * (((k1 + n1 * k2) * column) % spec.n_fft) / spec.n_fft
    for built, exact in ((cos, np.cos(phase)), (sin, np.sin(phase))):
        assert built.dtype == np.float32 and built.shape == exact.shape
        assert np.all(np.abs(built - exact.astype(np.float32)) <= np.spacing(np.float32(1)))  # one rounding
    frame_starts = np.arange(spec.n_frames(WINDOW)) * spec.hop_length
    np.testing.assert_array_equal(rows * n2, frame_starts[None, :] + n2 * np.arange(n1)[:, None])


@pytest.mark.parametrize("win_length", FRAMES)
def test_the_exported_file_holds_the_factored_front_end_and_runs_as_pytorch(tmp_path: Path, win_length: int) -> None:
    torch.manual_seed(0)
    model = EmotionModel(FrontendSpec(win_length=win_length), 8).eval()
    path = tmp_path / f"frames{win_length}.onnx"
    export_fp32(model, path, WINDOW)
    graph = onnx.load(str(path)).graph
    assert not [n.op_type for n in graph.node if n.name.startswith(PREFIX) and n.op_type == "Conv"]
    assert model.frontend.dft.numel() not in {int(np.prod(init.dims)) for init in graph.initializer}
    windows = _speech_and_noise()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(torch.from_numpy(windows)).numpy()
    np.testing.assert_allclose(session.run(None, {INPUT_NAME: windows})[0], expected, atol=1e-4)


def test_onnx_runtime_builds_the_rearranged_tables_once_at_load(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    export_fp32(EmotionModel(FrontendSpec(), 8).eval(), path, WINDOW)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(tmp_path / "as_loaded.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    loaded = {node.output[0] for node in onnx.load(str(tmp_path / "as_loaded.onnx")).graph.node}
    built = {PREFIX + name for name in ("second_sin", "frame_rows", "second", "window_grid", "mel_reordered")}
    assert not loaded & built  # folded into constants: no cost per window
    assert OUTPUT in loaded


def test_the_int8_file_carries_the_same_float_front_end(tmp_path: Path) -> None:
    fp32, int8 = tmp_path / "model.fp32.onnx", tmp_path / "model.int8.onnx"
    export_fp32(EmotionModel(FrontendSpec(), 8).eval(), fp32, WINDOW)
    quantize_int8(fp32, int8, _speech_and_noise())
    (fp32_nodes, fp32_tables), (int8_nodes, int8_tables) = front_end_of(fp32), front_end_of(int8)
    assert int8_nodes == fp32_nodes and {t.name for t in int8_tables} == {t.name for t in fp32_tables}
    assert not [n for n in int8_nodes if "Quant" in n.op_type or "Integer" in n.op_type]


def test_a_front_end_that_hands_on_two_tensors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    export_fp32(EmotionModel(FrontendSpec(), 8).eval(), path, WINDOW)
    model = onnx.load(str(path))
    first_backbone_node = next(n for n in model.graph.node if not n.name.startswith(PREFIX))
    first_backbone_node.input.append(PREFIX + "power")  # a second tensor leaves the front end
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match="hand one tensor"):
        put_front_end(path, *factored_log_mel(FrontendSpec(), WINDOW, INPUT_NAME))


def test_a_constant_the_exporter_shares_with_the_network_stays_with_the_network(tmp_path: Path) -> None:
    """The TorchScript exporter reuses equal constants across scopes and may name one after the front
    end (a grouped ensemble's graph did): the swap keeps it for the network, and the outputs stay."""
    path = tmp_path / "model.onnx"
    export_fp32(EmotionModel(FrontendSpec(), 8).eval(), path, WINDOW)
    windows = _speech_and_noise()
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {INPUT_NAME: windows})[0]
    model = onnx.load(str(path))
    graph = model.graph
    first_conv = next(node for node in graph.node if node.op_type == "Conv" and not node.name.startswith(PREFIX))
    weight = next(init for init in graph.initializer if init.name == first_conv.input[1])
    graph.initializer.remove(weight)  # the network now reads it from a constant named as the front end's
    graph.node.insert(0, onnx.helper.make_node("Constant", [], [weight.name], name=PREFIX + "Constant_shared",
                                               value=weight))
    onnx.save(model, str(path))
    put_front_end(path, *factored_log_mel(FrontendSpec(), WINDOW, INPUT_NAME))
    names = [node.name for node in onnx.load(str(path)).graph.node]
    assert "/network" + PREFIX + "Constant_shared" in names and PREFIX + "Constant_shared" not in names
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {INPUT_NAME: windows})[0]
    np.testing.assert_allclose(got, expected, atol=1e-6)
