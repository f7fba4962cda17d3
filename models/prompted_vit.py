"""ViT with multi-view complementary prompters (MCP): the part the image model and S2D share."""
from functools import partial

import torch
from einops import rearrange
from timm.layers import PatchEmbed, calculate_drop_path_rates, trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from .prompt_block import PromptBlock


def token2feature(tokens, grid):
    return rearrange(tokens, 'b (h w) d -> b d h w', h=grid)


def feature2token(feature):
    return rearrange(feature, 'b d h w -> b (h w) d')


class PromptedViT(nn.Module):
    """Patch embedding, landmark-guided prompt stage 0, class token, position (and temporal)
    embedding and the ViT blocks with a deep prompt before each block after the first
    (docs/MODEL.md sections 3-4).

    `num_frames` set (the video model): a temporal embedding, and every prompt block also holds a
    temporal-modeling adapter; None (the image model): the prompt blocks add only the
    landmark-guided prompt.
    `forward_features(frames (N,3,H,W), landmark_feats (N,C_l,g,g)) -> tokens (N, 1+g*g, D)`.
    """

    def __init__(self, img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12,
                 mlp_ratio=4.0, landmark_channels=128, prompt_hidden=8, num_frames=None,
                 adapter_ratio=0.25, drop_path_rate=0.0):
        super().__init__()
        self.img_size = img_size
        self.embed_dim = embed_dim
        self.num_frames = num_frames
        self.num_layers = depth
        self.landmark_channels = landmark_channels
        self.grid_size = img_size // patch_size
        num_patches = self.grid_size ** 2
        vit_norm = partial(nn.LayerNorm, eps=1e-6)

        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim), requires_grad=False)
        self.temporal_embedding = None if num_frames is None else nn.Parameter(torch.zeros(1, num_frames, embed_dim))
        self.patch_embed = PatchEmbed(img_size, patch_size, 3, embed_dim)
        self.patch_embed_prompt = PatchEmbed(self.grid_size, 1, landmark_channels, embed_dim)
        self.prompt_blocks = nn.ModuleList([
            PromptBlock(embed_dim, prompt_hidden, num_frames, adapter_ratio) for _ in range(depth)])
        self.prompt_norms = nn.ModuleList([vit_norm(embed_dim) for _ in range(depth)])
        drop_path = calculate_drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, drop_path=drop_path[i], norm_layer=vit_norm)
            for i in range(depth)])

        for embedding in (self.cls_token, self.pos_embed, self.temporal_embedding):
            if embedding is not None:
                trunc_normal_(embedding, std=.02)

    def unused_parameter_names(self):
        """The trainable parameters that never get a gradient (left out of DDP's gradient synchronisation)."""
        return [f'prompt_norms.{self.num_layers - 1}.{name}' for name, _ in self.prompt_norms[-1].named_parameters()]

    def no_weight_decay(self):
        return {'pos_embed', 'cls_token', 'temporal_embedding'}

    def get_num_layers(self):
        return self.num_layers

    def group_matcher(self, coarse=False):
        """Layer ids for timm's layer-wise lr decay: embeddings 0, blocks.i i+1, everything else last."""
        # as the original's rule, '^patch_embed' also matches patch_embed_prompt
        return {'stem': r'^cls_token|^pos_embed|^patch_embed', 'blocks': r'^blocks\.(\d+)'}

    def forward_features(self, frames, landmark_feats):
        x = self.patch_embed(frames)
        a = self.patch_embed_prompt(landmark_feats)

        x, a = add_prompt(self.prompt_blocks[0], self.prompt_norms[0], self.grid_size, x, self.prompt_norms[0](x), a)
        x = self.blocks[0](self._pos_embed(x))
        for i in range(1, self.num_layers):
            # quirk kept: prompt_norms[i - 1], so prompt_norms[0] serves twice and the last one is unused
            x, a = self.prompted_layer(x, a, self.prompt_blocks[i], self.prompt_norms[i - 1], self.prompt_norms[0],
                                       self.blocks[i], self.grid_size)
        return x

    @staticmethod
    def prompted_layer(x, a, prompt_block, norm, landmark_norm, block, grid):
        """Deep prompt i >= 1 (class token untouched) then ViT block i: `(x, a) -> (x, a)`. The same code for every
        layer, modules as arguments, so that `models.fast_paths.compile_layers` compiles it once for all layers."""
        patches, a = add_prompt(prompt_block, landmark_norm, grid, x[:, 1:], norm(x)[:, 1:], a)
        return block(torch.cat([x[:, :1], patches], dim=1)), a

    def _pos_embed(self, x):
        """Prepend the class token, add the position embedding and (video) the temporal embedding
        to every token of a frame."""
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        if self.temporal_embedding is None:
            return x
        x = rearrange(x, '(b t) n d -> b t n d', t=self.num_frames) + self.temporal_embedding.unsqueeze(2)
        return rearrange(x, 'b t n d -> (b t) n d')

    def check_inputs(self, video, landmark_feats, num_frames=None):
        """video (B,3,T,S,S), with T = `num_frames` when given; landmark_feats (B*T,C_l,g,g)."""
        s = self.img_size
        t = num_frames or (video.shape[2] if video.ndim == 5 else 'T')
        if video.ndim != 5 or tuple(video.shape[1:]) != (3, t, s, s):
            raise ValueError(f'video must have shape (B, 3, {t}, {s}, {s}) for this model '
                             f'(num_frames={num_frames or "any"}, img_size={s}), got {tuple(video.shape)}')
        expected = (video.shape[0] * t, self.landmark_channels, self.grid_size, self.grid_size)
        if tuple(landmark_feats.shape) != expected:
            raise ValueError(f'landmark_feats must have shape {expected} (B*T, landmark channels, '
                             f'grid, grid), got {tuple(landmark_feats.shape)}')


def add_prompt(prompt_block, landmark_norm, grid, patches, normed_patches, landmark_tokens):
    """A prompt block: (patches + q + p, p as tokens: the landmark stream of the next block)."""
    # quirk kept: the landmark stream is always normalised with prompt_norms[0] (`landmark_norm`)
    p, q = prompt_block(token2feature(normed_patches, grid), token2feature(landmark_norm(landmark_tokens), grid))
    p = feature2token(p)
    return (patches if q is None else patches + q) + p, p


def init_linear_and_layernorm(module):
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
