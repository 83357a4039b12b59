"""ser-bench: latency, throughput and memory of the recognizer, with baselines measured in the same run."""
import emovox.realtime  # noqa: E402,F401  (first: it opts out of ONNX Runtime's telemetry)
