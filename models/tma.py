"""Temporal-Modeling Adapter: attention over frames per token position, then a spatial adapter."""
from functools import partial

from einops import rearrange
from torch import nn

from .adapter import Adapter

TEMPORAL_ATTENTION_HEADS = 8


class TemporalModelingAdapter(nn.Module):
    """`forward(tokens (B*T, n, D)) -> (B*T, n, D)`."""

    def __init__(self, dim, num_frames, ratio=0.25):
        super().__init__()
        hidden_dim = int(dim * ratio)
        if hidden_dim == 0 or hidden_dim % TEMPORAL_ATTENTION_HEADS:
            raise ValueError(f'TMA hidden size int({dim} * {ratio}) = {hidden_dim} must be a positive '
                             f'multiple of {TEMPORAL_ATTENTION_HEADS} (the temporal attention heads)')
        self.num_frames = num_frames
        self.T_Adapter = Adapter(dim, hidden_dim, attention_heads=TEMPORAL_ATTENTION_HEADS)
        self.norm = nn.LayerNorm(dim, eps=1e-5)  # quirk kept: PyTorch's default eps, not the ViT's 1e-6
        self.S_Adapter = Adapter(dim, hidden_dim)

    def forward(self, x, regroup_hidden=False):
        """`regroup_hidden`: regroup around the temporal attention only, on the adapter's hidden features
        (its Linear layers and GELU act per token, so the result is the same as regrouping its input and
        output, with 4x fewer bytes copied)."""
        to_sequences = partial(rearrange, pattern='(b t) n d -> (b n) t d', t=self.num_frames)
        to_frames = partial(rearrange, pattern='(b n) t d -> (b t) n d', n=x.shape[1])
        if regroup_hidden:
            x = self.T_Adapter(x, around_attention=(to_sequences, to_frames))
        else:
            x = to_frames(self.T_Adapter(to_sequences(x)))
        return self.S_Adapter(self.norm(x))
