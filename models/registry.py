"""Named S2D configurations: video models s2d_* (S2D) and static-stage image models s2d_image_* (S2DImage)."""
from .image_model import S2DImage
from .s2d import S2D

BACKBONES = {
    # The paper's model: ViT-B/16 at 224.
    'base_patch16_224': dict(img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12),
    # A small model with the same 14x14 grid as the landmark features, for quick experiments.
    'tiny_patch8_112': dict(img_size=112, patch_size=8, embed_dim=192, depth=4, num_heads=3),
    # The CPU demo's model: an 8x8 grid, matched by the landmark network at 64 px.
    'tiny_patch8_64': dict(img_size=64, patch_size=8, embed_dim=192, depth=4, num_heads=3),
}
IMAGE_MODEL_PREFIX = 's2d_image_'
MODEL_CONFIGS = {**{f's2d_{name}': config for name, config in BACKBONES.items()},
                 **{f'{IMAGE_MODEL_PREFIX}{name}': config for name, config in BACKBONES.items()}}


def is_image_model(name):
    return name.startswith(IMAGE_MODEL_PREFIX)


def build_model(name, **overrides):
    if name not in MODEL_CONFIGS:
        raise ValueError(f'unknown model {name!r}; known models: {sorted(MODEL_CONFIGS)}')
    model_class = S2DImage if is_image_model(name) else S2D
    return model_class(**{**MODEL_CONFIGS[name], **overrides})
