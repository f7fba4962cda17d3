"""Bottleneck adapter: Linear down -> GELU -> (optional self-attention) -> Linear up, no residual."""
from timm.layers import Attention
from torch import nn


class Adapter(nn.Module):
    def __init__(self, dim, hidden_dim, attention_heads=None):
        super().__init__()
        self.D_fc1 = nn.Linear(dim, hidden_dim)
        self.D_fc2 = nn.Linear(hidden_dim, dim)
        self.act = nn.GELU()
        self.attn = (Attention(hidden_dim, num_heads=attention_heads, qkv_bias=False)
                     if attention_heads else nn.Identity())

    def forward(self, x, around_attention=None):
        """`around_attention`: optional (before, after) functions applied just before and after the attention."""
        x = self.act(self.D_fc1(x))
        if around_attention is None:
            return self.D_fc2(self.attn(x))
        before, after = around_attention
        return self.D_fc2(after(self.attn(before(x))))
