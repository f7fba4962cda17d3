"""S2D: the prompted ViT with temporal-modeling adapters, temporal embedding and I3D head (docs/MODEL.md
sections 1-4)."""
from einops import rearrange
from torch import nn

from .i3d_head import I3DHead
from .prompted_vit import PromptedViT, init_linear_and_layernorm


class S2D(PromptedViT):
    """`forward(video (B,3,T,H,W), landmark_feats (B*T,C_l,g,g)) -> (logits (B,K), feature (B,D))`."""

    def __init__(self, img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12,
                 mlp_ratio=4.0, num_frames=16, num_classes=7, landmark_channels=128,
                 adapter_ratio=0.25, prompt_hidden=8, head_dropout=0.5, drop_path_rate=0.0):
        super().__init__(img_size, patch_size, embed_dim, depth, num_heads, mlp_ratio, landmark_channels,
                         prompt_hidden, num_frames, adapter_ratio, drop_path_rate)
        self.num_classes = num_classes
        self.ln_post = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = I3DHead(embed_dim, num_classes, num_frames, head_dropout)
        self.apply(init_linear_and_layernorm)

    def forward(self, video, landmark_feats):
        self.check_inputs(video, landmark_feats, self.num_frames)
        x = self.forward_features(rearrange(video, 'b c t h w -> (b t) c h w'), landmark_feats)
        return self.head(self.ln_post(x)[:, 0])
