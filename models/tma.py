"""Temporal-Modeling Adapter: attention over frames per token position, then a spatial adapter."""
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

    def forward(self, x):
        num_tokens = x.shape[1]
        x = rearrange(x, '(b t) n d -> (b n) t d', t=self.num_frames)
        x = self.T_Adapter(x)
        x = rearrange(x, '(b n) t d -> (b t) n d', n=num_tokens)
        return self.S_Adapter(self.norm(x))
