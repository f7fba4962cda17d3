"""Multi-view complementary prompter block: landmark-guided prompt p and, in the video model, the
temporal adapter output q."""
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .fovea import Fovea
from .tma import TemporalModelingAdapter


class PromptBlock(nn.Module):
    """`forward(rgb_map, landmark_map (N, D, g, g)) -> (p (N, D, g, g), q (N, g*g, D) or None)`.

    With `num_frames` the block holds the TMA (video model); without it q is None (image model).
    Takes the two halves of the original's channel-concatenated input separately (same result,
    no concat/split copy). `lean_layout` (off by default; `models.fast_paths.use_lean_layout`): the same
    result with fewer layout copies: the token map is copied once to contiguous tokens, which the TMA and
    `conv0_0` both read, and the TMA regroups frames and positions on its 4x narrower hidden features.
    """

    def __init__(self, dim, hidden_channels=8, num_frames=None, adapter_ratio=0.25):
        super().__init__()
        self.conv0_0 = nn.Conv2d(dim, hidden_channels, 1)
        self.conv0_1 = nn.Conv2d(dim, hidden_channels, 1)
        self.conv1x1 = nn.Conv2d(hidden_channels, dim, 1)
        self.fovea = Fovea()
        self.TMA = TemporalModelingAdapter(dim, num_frames, adapter_ratio) if num_frames is not None else None
        for conv in (self.conv0_0, self.conv0_1, self.conv1x1):
            nn.init.xavier_uniform_(conv.weight)
        self.lean_layout = False

    def forward(self, rgb_map, landmark_map):
        if self.lean_layout:
            rgb_map = rgb_map.contiguous(memory_format=torch.channels_last)  # tokens (N, g*g, D), contiguous
        q = None if self.TMA is None else self.TMA(rearrange(rgb_map, 'b d h w -> b (h w) d'),
                                                  regroup_hidden=self.lean_layout)
        g = self.fovea(pointwise(self.conv0_0, rgb_map)) + pointwise(self.conv0_1, landmark_map)
        return pointwise(self.conv1x1, g), q


def pointwise(conv, x):
    """`conv` (1x1) applied to x (B, C, H, W) as a product over channels: the same result, and on CPU
    several times faster than oneDNN's 1x1 convolution on these channels-last token maps."""
    return F.linear(x.permute(0, 2, 3, 1), conv.weight.flatten(1), conv.bias).permute(0, 3, 1, 2)
