"""PyTorch models only: AINet, DMTrack, their shared pieces and the registry."""
from .registry import available_models, build_model, load_model_config

__all__ = ["available_models", "build_model", "load_model_config"]
