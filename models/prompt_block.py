"""Multi-view complementary prompter block: landmark-guided prompt p and, in the video model, the
temporal adapter output q."""
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .fovea import Fovea
from .tma import TemporalModelingAdapter


class PromptBlock(nn.Module):
    """`forward(rgb_map, landmark_map (N, D, g, g)) -> (p (N, D, g, g), q (N, g*g, D) or None)`.

    With `num_frames` the block holds the TMA (video model); without it q is None (image model).
    Takes the two halves of the original's channel-concatenated input separately (same result,
    no concat/split copy).
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

    def forward(self, rgb_map, landmark_map):
        q = None if self.TMA is None else self.TMA(rearrange(rgb_map, 'b d h w -> b (h w) d'))
        p = pointwise(self.conv1x1, self.fovea(pointwise(self.conv0_0, rgb_map)) + pointwise(self.conv0_1, landmark_map))
        return p, q


def pointwise(conv, x):
    """`conv` (1x1) applied to x (B, C, H, W) as a product over channels: the same result, and on CPU
    several times faster than oneDNN's 1x1 convolution on these channels-last token maps."""
    return F.linear(x.permute(0, 2, 3, 1), conv.weight.flatten(1), conv.bias).permute(0, 3, 1, 2)
