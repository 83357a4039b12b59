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
from emovox.realtime.audio import AudioError, FileSource
from emovox.realtime.events import Event, Summary, UtteranceEnd, UtteranceStart, WindowResult
from emovox.realtime.model import Classifier, ModelError, ModelInfo, load_model_info
from emovox.realtime.pipeline import Pipeline
from emovox.realtime.settings import PipelineSettings, VadSettings, WindowSettings

__all__ = ["AudioError", "Classifier", "Event", "FileSource", "ModelError", "ModelInfo", "Pipeline",
           "PipelineSettings", "Summary", "UtteranceEnd", "UtteranceStart", "VadSettings", "WindowResult",
           "WindowSettings", "load_model_info"]
