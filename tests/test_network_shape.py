"""Networks of another width (``--channels``, ``--hidden``, #50): trained, keyed, shipped and reloaded at
their own shape, while every checkpoint of the shipped shape keeps the key it had before the option."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra")
pytest.importorskip("onnx", reason="export needs the [train] extra")
ort = pytest.importorskip("onnxruntime")

from emovox.train import recipe as recipe_module  # noqa: E402
from emovox.train.cli import main as ser_train  # noqa: E402
from emovox.train.corpora import Utterance  # noqa: E402
from emovox.train.ensemble import ensemble_model, shipped_model  # noqa: E402
from emovox.train.model import CNNLSTM, FrontendSpec  # noqa: E402
from emovox.train.recipe import Recipe, checkpoint_key, ensemble_member  # noqa: E402
from tests.conftest import DATA  # noqa: E402

NARROW = {"channels": (8, 16, 24), "hidden": 32}
SPEC = FrontendSpec()


def _items() -> list[Utterance]:
    return [Utterance(Path(f"/nowhere/{i}.wav"), "ravdess", f"actor{i}", "angry", "female") for i in range(3)]


def _hashed_settings(recipe: Recipe, monkeypatch) -> dict:
    """The recipe settings ``checkpoint_key`` hashes, caught on their way into the digest."""
    hashed: list[bytes] = []

    class Spy:
        @staticmethod
        def sha1(data: bytes = b""):
            hashed.append(data)
            return hashlib.sha1(data)

    monkeypatch.setattr(recipe_module, "hashlib", Spy)
    checkpoint_key(recipe, _items(), [0, 1])
    return json.loads(hashed[0])


def test_the_shipped_shape_leaves_every_earlier_checkpoint_key_as_it_was(monkeypatch) -> None:
    before_50 = {f.name for f in fields(Recipe)} - {"channels", "hidden"}
    assert set(_hashed_settings(ensemble_member("noise", 3), monkeypatch)) == before_50
    assert set(_hashed_settings(Recipe(**NARROW), monkeypatch)) == before_50 | {"channels", "hidden"}


def test_another_shape_is_another_checkpoint() -> None:
    items = _items()
    recipes = [Recipe(), Recipe(**NARROW), Recipe(channels=(8, 16, 24)), Recipe(hidden=32)]
    assert len({checkpoint_key(recipe, items, [0, 1]) for recipe in recipes}) == 4


def test_an_ensembles_narrow_members_reload_from_the_metadata(tmp_path: Path) -> None:
    torch.manual_seed(0)
    members = [CNNLSTM(SPEC.n_mels, 8, **NARROW).eval(), CNNLSTM(SPEC.n_mels, 8, window_mean=True).eval()]
    model = ensemble_model(SPEC, members, [1.1, 0.9], 1.3)
    torch.save(model.backbone.state_dict(), tmp_path / "pair.pt")
    metadata = {"labels": [str(i) for i in range(8)], "frontend": asdict(SPEC), "temperature": 1.3,
                "members": [{"train": {"window_mean": False}, "network": {"channels": [8, 16, 24], "hidden": 32},
                             "temperature": 1.1},
                            {"train": {"window_mean": True}, "temperature": 0.9}]}  # a file from before #50
    reloaded = shipped_model(metadata, tmp_path / "pair.pt")
    waves = torch.randn(2, 40000) * 0.1
    with torch.no_grad():
        assert torch.equal(reloaded(waves), model(waves))


def test_a_narrow_network_ships_end_to_end(tmp_path: Path) -> None:
    out, results, cache = tmp_path / "model", tmp_path / "results", tmp_path / "cache"
    status = ser_train(["ship", "--data", str(DATA), "--corpora", "ravdess", "--limit-per-speaker", "2",
                        "--folds", "1", "--epochs", "1", "--out", str(out), "--results", str(results),
                        "--cache", str(cache), "--name", "narrow", "--channels", "8,16,24", "--hidden", "32"])
    assert status == 0
    metadata = json.loads((out / "narrow.int8.json").read_text())
    assert metadata["network"] == {"channels": [8, 16, 24], "hidden": 32}
    model = shipped_model(metadata, out / "narrow.pt")
    assert model.backbone.lstm.hidden_size == 32 and model.backbone.head.in_features == 64
    windows = (np.random.default_rng(0).standard_normal((2, 40000)) * 0.05).astype(np.float32)
    session = ort.InferenceSession(str(out / "narrow.fp32.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():  # to 1e-4: the file's exact DFT against training's float16-rounded basis
        np.testing.assert_allclose(session.run(None, {"audio": windows})[0], model(torch.from_numpy(windows)).numpy(),
                                   atol=1e-4)
    assert metadata["sizes_bytes"]["int8"] < 250_000  # a quarter of the weights of the shipped shape's network


class _Captured(Exception):
    pass


def test_every_ensemble_member_takes_the_shape(monkeypatch) -> None:
    def capture(corpus, folds, recipes, cache, log):
        raise _Captured(recipes)

    monkeypatch.setattr(recipe_module, "load_corpus", lambda *args: None)
    monkeypatch.setattr("emovox.train.crossval.cross_validate", capture)
    with pytest.raises(_Captured) as captured:
        ser_train(["cv", "--data", str(DATA), "--corpora", "ravdess", "--limit-per-speaker", "1",
                   "--ensemble", "default,noise", "--channels", "8,16,24", "--hidden", "32"])
    recipes = captured.value.args[0]
    assert [r.train.noise_probability > 0 for r in recipes] == [False, True]
    assert all(r.network == NARROW for r in recipes)


def test_a_narrow_student_learns_from_teachers_of_the_shipped_shape(tmp_path: Path, monkeypatch) -> None:
    trained: list[dict] = []

    def fake_training(logmel, labels, n_classes, settings, frontend, log, *corpora, network, **inputs) -> CNNLSTM:
        trained.append({"student": bool(settings.distill_weight), **network})
        return CNNLSTM(frontend.n_mels, n_classes, **network)

    monkeypatch.setattr(recipe_module, "train_backbone", fake_training)
    monkeypatch.setattr(recipe_module, "teacher_probabilities",
                        lambda teachers, logmel, temperature: np.full((len(logmel), 8), 1 / 8))
    items = [Utterance(Path(f"/nowhere/{i}.wav"), "ravdess", f"actor{i}", label, "female")
             for i, label in enumerate(("angry", "sad", "happy"))]
    corpus = recipe_module.Corpus(items, np.zeros((3, SPEC.n_mels, 126), np.float16), np.arange(3))
    student = Recipe(train=recipe_module.replace(recipe_module.SHIPPED_TRAINING, distill_weight=0.5),
                     teachers=(recipe_module.TEACHERS["noise"],), **NARROW)
    model = recipe_module.train_on(corpus, [0, 1, 2], student, tmp_path, print)
    assert trained == [{"student": False, "channels": (16, 32, 48), "hidden": 64}, {"student": True, **NARROW}]
    assert model.lstm.hidden_size == 32


@pytest.mark.parametrize("flags, message", [
    (["--channels", "8,16"], "three counts"),
    (["--channels", "8,x,24"], "C1,C2,C3"),
    (["--channels", "0,16,24"], "three counts"),
    (["--hidden", "0"], "--hidden takes"),
    (["--ensemble", "default,noise", "--hidden", "32", "--noise-probability", "0.3"], "--channels, --hidden"),
])
def test_a_bad_shape_is_a_usage_error(flags: list[str], message: str, capsys) -> None:
    assert ser_train(["cv", "--data", str(DATA), "--corpora", "ravdess", "--limit-per-speaker", "1", *flags]) == 2
    assert message in capsys.readouterr().err
