from .checkpoint import (
                         UnsafeCheckpointError,
                         apply_checkpoint,
                         load_checkpoint,
                         read_checkpoint,
                         safe_load,
                         save_checkpoint,
)
from .freezing import freeze_for_finetuning
from .image_model import S2DImage
from .landmark import DEFAULT_WEIGHTS as DEFAULT_LANDMARK_WEIGHTS
from .landmark import LandmarkFeatures, build_landmark
from .loading import build_model_and_landmark
from .mobilefacenet import MobileFaceNet
from .registry import MODEL_CONFIGS, build_model, is_image_model
from .s2d import S2D

__all__ = ['S2D', 'S2DImage', 'is_image_model', 'MobileFaceNet', 'LandmarkFeatures', 'build_landmark',
           'DEFAULT_LANDMARK_WEIGHTS', 'build_model', 'build_model_and_landmark', 'MODEL_CONFIGS', 'load_checkpoint',
           'read_checkpoint', 'apply_checkpoint', 'safe_load',
           'save_checkpoint', 'UnsafeCheckpointError',
           'freeze_for_finetuning']
