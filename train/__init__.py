"""emovox.train: corpora, speaker-independent evaluation and the shipped model."""
import emovox.realtime  # noqa: E402,F401  (first: it opts out of ONNX Runtime's telemetry)
