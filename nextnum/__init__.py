"""NextNum: a small Vision Transformer that reads handwritten numbers and shows where it looked."""
from .config import Config, DataConfig, ModelConfig, TrainConfig
from .model import NextNum

__all__ = ["Config", "DataConfig", "ModelConfig", "TrainConfig", "NextNum", "Predictor", "Prediction"]


def __getattr__(name: str):  # the predictor pulls in OpenCV and matplotlib: load it on first use
    if name in ("Predictor", "Prediction"):
        from . import predictor
        return getattr(predictor, name)
    raise AttributeError(name)
