"""The static-stage image model: the prompted ViT without temporal adapters, final norm and linear head
(docs/MODEL.md section 7; the layout of the released `pretrain-AffectNet-7.pth`)."""
from einops import rearrange
from torch import nn

from .prompted_vit import PromptedViT, init_linear_and_layernorm


class S2DImage(PromptedViT):
    """`forward(images (B,3,T,H,W), landmark_feats (B*T,C_l,g,g)) -> (logits (B,K), feature (B,D))`.

    Every frame is classified on its own; a clip's logits and feature are the means over its T
    frames (T = 1 for an image dataset), as the video model's head averages its frame features.
    """

    def __init__(self, img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12,
                 mlp_ratio=4.0, num_classes=7, landmark_channels=128, prompt_hidden=8,
                 drop_path_rate=0.0):
        super().__init__(img_size, patch_size, embed_dim, depth, num_heads, mlp_ratio, landmark_channels,
                         prompt_hidden, None, drop_path_rate=drop_path_rate)
        self.num_classes = num_classes
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        self.apply(init_linear_and_layernorm)

    def forward(self, images, landmark_feats):
        self.check_inputs(images, landmark_feats)
        num_frames = images.shape[2]
        feature = self.norm(self.forward_features(rearrange(images, 'b c t h w -> (b t) c h w'),
                                                  landmark_feats))[:, 0]
        logits = rearrange(self.head(feature), '(b t) k -> b t k', t=num_frames).mean(1)
        return logits, rearrange(feature, '(b t) d -> b t d', t=num_frames).mean(1)
