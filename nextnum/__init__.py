"""NextNum: a small Vision Transformer that reads handwritten numbers and shows where it looked."""
from .config import Config, DataConfig, ModelConfig, TrainConfig

__all__ = ["Config", "DataConfig", "ModelConfig", "TrainConfig", "NextNum", "Predictor", "Prediction"]


def __getattr__(name: str):
    # loaded on first use, so that importing the package (nextnum.web.server, before the app sets its
    # process-wide malloc limit) starts no torch or OpenCV threads; the predictor also pulls in OpenCV
    if name == "NextNum":
        from .model import NextNum
        return NextNum
    if name in ("Predictor", "Prediction"):
        from . import predictor
        return getattr(predictor, name)
    raise AttributeError(name)
