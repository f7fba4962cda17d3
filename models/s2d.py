"""S2D: a ViT with multi-view complementary prompters and temporal-modeling adapters (MODEL.md 2)."""
from functools import partial

import torch
from einops import rearrange
from timm.layers import PatchEmbed, trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from .i3d_head import I3DHead
from .prompt_block import PromptBlock


def token2feature(tokens, grid):
    return rearrange(tokens, 'b (h w) d -> b d h w', h=grid)


def feature2token(feature):
    return rearrange(feature, 'b d h w -> b (h w) d')


class S2D(nn.Module):
    """`forward(video (B,3,T,H,W), landmark_feats (B*T,C_l,g,g)) -> (logits (B,K), feature (B,D))`."""

    def __init__(self, img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12,
                 mlp_ratio=4.0, num_frames=16, num_classes=7, landmark_channels=128,
                 adapter_ratio=0.25, prompt_hidden=8, head_dropout=0.5):
        super().__init__()
        self.img_size = img_size
        self.num_frames = num_frames
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.num_layers = depth
        self.landmark_channels = landmark_channels
        self.grid_size = img_size // patch_size
        num_patches = self.grid_size ** 2
        vit_norm = partial(nn.LayerNorm, eps=1e-6)

        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim), requires_grad=False)
        self.temporal_embedding = nn.Parameter(torch.zeros(1, num_frames, embed_dim))
        self.patch_embed = PatchEmbed(img_size, patch_size, 3, embed_dim)
        self.patch_embed_prompt = PatchEmbed(self.grid_size, 1, landmark_channels, embed_dim)
        self.prompt_blocks = nn.ModuleList([
            PromptBlock(embed_dim, num_frames, prompt_hidden, adapter_ratio) for _ in range(depth)])
        self.prompt_norms = nn.ModuleList([vit_norm(embed_dim) for _ in range(depth)])
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, norm_layer=vit_norm)
            for _ in range(depth)])
        self.ln_post = vit_norm(embed_dim)
        self.head = I3DHead(embed_dim, num_classes, num_frames, head_dropout)

        for embedding in (self.cls_token, self.pos_embed, self.temporal_embedding):
            trunc_normal_(embedding, std=.02)
        self.apply(_init_linear_and_layernorm)

    def no_weight_decay(self):
        return {'pos_embed', 'cls_token', 'temporal_embedding'}

    def get_num_layers(self):
        return self.num_layers

    def group_matcher(self, coarse=False):
        """Layer ids for timm's layer-wise lr decay: embeddings 0, blocks.i i+1, everything else last."""
        # as the original's rule, '^patch_embed' also matches patch_embed_prompt
        return {'stem': r'^cls_token|^pos_embed|^patch_embed', 'blocks': r'^blocks\.(\d+)'}

    def forward(self, video, landmark_feats):
        self._check_inputs(video, landmark_feats)
        x = self.patch_embed(rearrange(video, 'b c t h w -> (b t) c h w'))
        a = self.patch_embed_prompt(landmark_feats)

        p, q = self._prompt(0, self.prompt_norms[0](x), a)
        a = feature2token(p)
        x = x + q + a

        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = rearrange(x, '(b t) n d -> b t n d', t=self.num_frames)
        x = x + self.temporal_embedding.unsqueeze(2)
        x = rearrange(x, 'b t n d -> (b t) n d')

        for i, block in enumerate(self.blocks):
            if i >= 1:
                # quirk kept: prompt_norms[i - 1], so prompt_norms[0] serves twice and the last one is unused
                p, q = self._prompt(i, self.prompt_norms[i - 1](x)[:, 1:], a)
                a = feature2token(p)
                x = torch.cat([x[:, :1], x[:, 1:] + q + a], dim=1)
            x = block(x)

        x = self.ln_post(x)[:, 0]
        return self.head(x)

    def _prompt(self, i, rgb_tokens, landmark_tokens):
        # quirk kept: the landmark stream is always normalised with prompt_norms[0]
        landmark_map = token2feature(self.prompt_norms[0](landmark_tokens), self.grid_size)
        return self.prompt_blocks[i](token2feature(rgb_tokens, self.grid_size), landmark_map)

    def _check_inputs(self, video, landmark_feats):
        t, s = self.num_frames, self.img_size
        if video.ndim != 5 or tuple(video.shape[1:]) != (3, t, s, s):
            raise ValueError(f'video must have shape (B, 3, {t}, {s}, {s}) for this model '
                             f'(num_frames={t}, img_size={s}), got {tuple(video.shape)}')
        expected = (video.shape[0] * t, self.landmark_channels, self.grid_size, self.grid_size)
        if tuple(landmark_feats.shape) != expected:
            raise ValueError(f'landmark_feats must have shape {expected} (B*T, landmark channels, '
                             f'grid, grid), got {tuple(landmark_feats.shape)}')


def _init_linear_and_layernorm(module):
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
