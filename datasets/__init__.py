from .build import build_dataset
from .collate import multiple_samples_collate
from .frames import BadClipError
from .mixup import VideoMixup
from .sampler import ClassBalancedSampler
from .video_dataset import VideoClsDataset

__all__ = ["BadClipError", "build_dataset", "VideoClsDataset", "ClassBalancedSampler", "VideoMixup",
           "multiple_samples_collate"]
