from .checkpoint import UnsafeCheckpointError, load_checkpoint, safe_load, save_checkpoint
from .freezing import freeze_for_finetuning
from .image_model import S2DImage
from .landmark import LandmarkFeatures
from .mobilefacenet import MobileFaceNet
from .registry import MODEL_CONFIGS, build_model, is_image_model
from .s2d import S2D

__all__ = ['S2D', 'S2DImage', 'is_image_model', 'MobileFaceNet', 'LandmarkFeatures', 'build_model', 'MODEL_CONFIGS',
           'load_checkpoint', 'safe_load', 'save_checkpoint', 'UnsafeCheckpointError',
           'freeze_for_finetuning']
