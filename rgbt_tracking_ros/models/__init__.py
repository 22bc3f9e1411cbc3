"""PyTorch models (AINet, DMTrack, the compact model), their shared pieces, the registry and
the model protocol. Importing this package does not import torch: the model classes are
imported when a model is built."""
from .protocol import Geometry, TrackingModel, model_geometry
from .registry import available_models, build_model, config_geometry, load_model_config

__all__ = [
    "Geometry",
    "TrackingModel",
    "available_models",
    "build_model",
    "config_geometry",
    "load_model_config",
    "model_geometry",
]
