"""Frozen MobileFaceNet that turns a video into per-frame landmark feature maps."""
import os
import warnings

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from .checkpoint import safe_load
from .mobilefacenet import MobileFaceNet

WEIGHTS_FILE = 'mobilefacenet_model_best.pth.tar'
DEFAULT_LANDMARK_WEIGHTS = os.path.join('ckpts', WEIGHTS_FILE)  # where ckpts/README.md puts them, relative to the clone
RANDOM_WEIGHTS_SEED = 0


class LandmarkFeatures(nn.Module):
    """`forward(video (B,3,T,H,W)) -> conv_4 features (B*T,128,g,g)`; frozen and always in eval mode.

    Frames are resized to g * 8 pixels (112 for the paper's 14x14 grid), so the feature grid g
    matches the ViT's patch grid.
    """

    def __init__(self, weights=None, trust=False, grid_size=14):
        super().__init__()
        self.input_size = grid_size * MobileFaceNet.feature_stride
        if weights is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_WEIGHTS_SEED)
                self.net = MobileFaceNet()
            warnings.warn('LandmarkFeatures: no MobileFaceNet weights given, the landmark features '
                          'come from a RANDOMLY initialised network (fixed seed). Results will not '
                          f'match the paper; put {WEIGHTS_FILE} in ckpts/ and pass it.', stacklevel=2)
        else:
            self.net = MobileFaceNet()
            self.net.load_state_dict(_read_weights(weights, trust))
        self.net.requires_grad_(False)
        self.train(False)

    def train(self, mode=True):
        # Always eval: a parent's model.train() must not switch the BatchNorm layers to batch statistics.
        return super().train(False)

    @torch.no_grad()
    def forward(self, video):
        if video.ndim != 5 or video.shape[1] != 3:
            raise ValueError(f'expected a video of shape (B, 3, T, H, W), got {tuple(video.shape)}')
        frames = rearrange(video, 'b c t h w -> (b t) c h w')
        size = self.input_size
        if frames.shape[-2:] != (size, size):
            frames = F.interpolate(frames, size=(size, size), mode='bilinear', align_corners=True)
        return self.net.features(frames)


def build_landmark(weights, trust=False, grid_size=14):
    """LandmarkFeatures from a `--landmark_weights` value: a file, or 'random' (demo and tests)."""
    return LandmarkFeatures(None if weights == 'random' else weights, trust=trust, grid_size=grid_size)


def _read_weights(path, trust):
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'MobileFaceNet landmark weights not found at {path}. Get {WEIGHTS_FILE} from the '
            'original S2D repository (it ships under landmark/) and put it in ckpts/.')
    checkpoint = safe_load(path, trust=trust)
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        found = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f'{path}: expected a dict with a "state_dict" entry, found {found}')
    state_dict = dict(checkpoint['state_dict'])
    consume_prefix_in_state_dict_if_present(state_dict, 'module.')
    return state_dict
