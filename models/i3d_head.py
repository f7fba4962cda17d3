"""I3D-style classification head: average the per-frame features over time, dropout, linear."""
from einops import rearrange
from torch import nn


class I3DHead(nn.Module):
    """`forward(frame_features (B*T, D)) -> (logits (B, K), feature (B, D))`."""

    def __init__(self, dim, num_classes, num_frames, dropout=0.5):
        super().__init__()
        self.num_frames = num_frames
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc_cls = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = rearrange(x, '(b t) d -> b d t', t=self.num_frames).mean(dim=-1)
        feature = self.dropout(x)  # quirk kept: the returned feature is taken after dropout
        return self.fc_cls(feature), feature
