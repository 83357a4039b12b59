"""The shipped model: finding it, checking it against its metadata, running it."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODEL = "emotion_cnn_lstm.int8.onnx"
BUNDLED_MODELS = {
    "default": DEFAULT_MODEL,
    "noise-robust": "emotion_cnn_lstm_noise_robust.int8.onnx",
    "phone": "emotion_cnn_lstm_phone.int8.onnx",
}
"""The models inside the package, by the name ``--model`` takes: the default is the most accurate
on clean speech; the noise-robust one trained with noise mixed into 30 % of its windows and holds
up better when background noise is audible; the phone one trained with 30 % of its windows sent
through an emulated narrowband line, for telephone audio (README, "Which model")."""


class ModelError(Exception):
    """The model file or its metadata is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class ModelInfo:
    """What the runtime must know about a model, read from the JSON beside it."""

    path: Path
    labels: tuple[str, ...]
    sample_rate: int
    window_samples: int
    metadata: dict[str, Any]

    @property
    def window_s(self) -> float:
        return self.window_samples / self.sample_rate


def metadata_path(model_path: Path) -> Path:
    """``name.int8.onnx`` -> ``name.int8.json``."""
    return model_path.with_suffix(".json")


def default_model_path() -> Path:
    """The int8 model inside the installed package (no download, ever)."""
    return bundled_model_path("default")


def bundled_model_path(name: str) -> Path:
    """A model shipped inside the package, by its ``BUNDLED_MODELS`` name."""
    return Path(str(resources.files("emovox.models").joinpath(BUNDLED_MODELS[name])))


def resolve_model(name_or_path: str | Path | None) -> Path:
    """``--model``'s argument: a bundled model's name (``noise-robust``) or a file; None is the default."""
    if name_or_path is None:
        return default_model_path()
    if isinstance(name_or_path, str) and name_or_path in BUNDLED_MODELS:
        return bundled_model_path(name_or_path)
    return Path(name_or_path)


def load_model_info(model: str | Path | None = None) -> ModelInfo:
    """Read and check a model's metadata: ``model`` is a bundled name, a path, or None (the default)."""
    path = resolve_model(model)
    if not path.is_file():
        raise ModelError(f"model file not found: {path} (bundled models: {', '.join(BUNDLED_MODELS)})")
    meta_file = metadata_path(path)
    try:
        metadata = json.loads(meta_file.read_text())
        labels = tuple(str(label) for label in metadata["labels"])
        sample_rate = int(metadata["sample_rate"])
        window_samples = int(metadata["window_samples"])
    except FileNotFoundError:
        raise ModelError(f"model metadata not found: {meta_file}") from None
    except (ValueError, KeyError, TypeError) as error:
        raise ModelError(f"model metadata {meta_file} is invalid: {error}") from None
    if len(labels) < 2 or sample_rate <= 0 or window_samples <= 0:
        raise ModelError(f"model metadata {meta_file} is invalid: needs labels, sample_rate, window_samples")
    return ModelInfo(path, labels, sample_rate, window_samples, metadata)


class Classifier:
    """One ONNX Runtime session: raw 16 kHz windows in, class probabilities out.

    One intra-op and one inter-op thread by default (silero-vad's choice): one
    window is small work, and a real-time tool should leave the other cores to
    the audio and the rest of the machine.
    """

    def __init__(self, info: ModelInfo, threads: int = 1, gpu: bool = False) -> None:
        import onnxruntime as ort  # imported here so `--help` stays instant

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if gpu:
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ModelError("--gpu: onnxruntime has no CUDA provider here (pip install 'emovox[gpu]')")
            providers.insert(0, "CUDAExecutionProvider")
        # A model may name ORT graph optimizations that slow it down (see train/export.py).
        disabled = [str(name) for name in info.metadata.get("ort_disabled_optimizers", [])]
        try:
            self._session = ort.InferenceSession(str(info.path), options, providers=providers,
                                                 disabled_optimizers=disabled)
        except Exception as error:  # ORT raises its own unrelated exception types
            raise ModelError(f"cannot load model {info.path}: {str(error).splitlines()[0]}") from None
        self.info = info
        self.provider = self._session.get_providers()[0]
        self._check_signature()

    def _check_signature(self) -> None:
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{self.info.path}: expected one input and one output")
        self._input = inputs[0].name
        in_shape, out_shape = inputs[0].shape, outputs[0].shape
        if len(in_shape) != 2 or in_shape[1] != self.info.window_samples:
            raise ModelError(f"{self.info.path}: input shape {in_shape} does not match the metadata's "
                             f"window of {self.info.window_samples} samples")
        if len(out_shape) != 2 or out_shape[1] != len(self.info.labels):
            raise ModelError(f"{self.info.path}: output shape {out_shape} does not match the metadata's "
                             f"{len(self.info.labels)} labels")

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """[batch, window_samples] float32 -> [batch, n_labels] probabilities."""
        return self._session.run(None, {self._input: np.ascontiguousarray(windows, dtype=np.float32)})[0]

    def timed_predict(self, windows: np.ndarray) -> tuple[np.ndarray, float]:
        """Probabilities and the wall time they took, in ms."""
        began = time.perf_counter()
        probs = self.predict(windows)
        return probs, (time.perf_counter() - began) * 1000.0
