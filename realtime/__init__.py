"""emovox.realtime: streaming speech emotion recognition on ONNX Runtime.

    from emovox.realtime import Classifier, FileSource, Pipeline, PipelineSettings, load_model_info

    info = load_model_info()                       # the int8 model shipped in the package
    pipeline = Pipeline(Classifier(info), PipelineSettings())
    for block in FileSource("talk.wav").blocks():  # or MicSource(...).blocks()
        for event in pipeline.push(block):
            print(event.to_dict())
    for event in pipeline.finish():
        print(event.to_dict())
"""
import os

# ONNX Runtime 1.29+ ships opt-out telemetry on Linux and macOS too: a persistent device id and a
# database under ~/.cache/Microsoft, a session file in $TMPDIR, and uploads to Microsoft. A tool that
# listens to people's voices writes and sends nothing it was not asked to, so it opts out before
# onnxruntime is first imported (anyone who wants the telemetry can set ORT_DISABLE_TELEMETRY=0).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from emovox.realtime.audio import AudioError, FileSource  # noqa: E402
from emovox.realtime.events import Event, Summary, UtteranceEnd, UtteranceStart, WindowResult
from emovox.realtime.model import Classifier, ModelError, ModelInfo, load_model_info
from emovox.realtime.pipeline import Pipeline
from emovox.realtime.settings import PipelineSettings, VadSettings, WindowSettings

__all__ = ["AudioError", "Classifier", "Event", "FileSource", "ModelError", "ModelInfo", "Pipeline",
           "PipelineSettings", "Summary", "UtteranceEnd", "UtteranceStart", "VadSettings", "WindowResult",
           "WindowSettings", "load_model_info"]
