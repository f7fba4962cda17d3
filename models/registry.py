"""Named S2D configurations."""
from .s2d import S2D

MODEL_CONFIGS = {
    # The paper's model: ViT-B/16 at 224.
    's2d_base_patch16_224': dict(img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12),
    # A small model with the same 14x14 grid as the landmark features, for quick experiments.
    's2d_tiny_patch8_112': dict(img_size=112, patch_size=8, embed_dim=192, depth=4, num_heads=3),
}


def build_model(name, **overrides):
    if name not in MODEL_CONFIGS:
        raise ValueError(f'unknown model {name!r}; known models: {sorted(MODEL_CONFIGS)}')
    return S2D(**{**MODEL_CONFIGS[name], **overrides})
