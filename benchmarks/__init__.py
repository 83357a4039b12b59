"""ser-bench: latency, throughput and memory of the recognizer, with baselines measured in the same run."""
