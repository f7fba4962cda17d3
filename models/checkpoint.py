"""Safe checkpoint reading, the original S2D loading rules, and atomic saving."""
import argparse
import os
import pickle
import warnings

import torch
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from utils.files import atomic_output

CHECKPOINT_KINDS = ('pretrained', 'finetuned', 'resume')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The file pickles a type that weights_only loading does not allow."""


def safe_load(path, trust=False):
    """torch.load on CPU; without `trust` only tensors, plain containers and argparse.Namespace."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    if trust:
        return torch.load(path, map_location='cpu', weights_only=False)
    with torch.serialization.safe_globals([argparse.Namespace]):
        try:
            return torch.load(path, map_location='cpu', weights_only=True)
        except pickle.UnpicklingError as err:
            offending = _unsafe_globals(path) or [f'(not identified; torch says: {err})']
            raise UnsafeCheckpointError(
                f'{path} holds types that are not allowed in safe (weights_only) loading: '
                f'{", ".join(offending)}. Only load it if you trust its source: pass trust=True '
                f'(--trust_checkpoint on the command line).') from err


def _unsafe_globals(path):
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except ValueError:  # legacy (non-zip) files cannot be inspected statically
        return []


def save_checkpoint(state, path):
    """torch.save to a temporary file beside `path`, then rename it over `path` atomically."""
    with atomic_output(path) as tmp_path:
        torch.save(state, tmp_path)


def load_checkpoint(model, path, kind, trust=False):
    """Load weights into `model` and return the whole checkpoint dict.

    kind 'pretrained': a static image model (into the video model) or MAE weights (into the image
    model), loaded non-strictly (docs/MODEL.md section 6).
    kind 'finetuned' / 'resume': a checkpoint of the original layout; its `model` entry must match
    the model exactly.
    """
    if kind not in CHECKPOINT_KINDS:
        raise ValueError(f'unknown checkpoint kind {kind!r}; expected one of {CHECKPOINT_KINDS}')
    checkpoint = read_checkpoint(path, trust=trust)
    apply_checkpoint(model, checkpoint, kind, path)
    return checkpoint


def read_checkpoint(path, trust=False):
    """The checkpoint dict in `path`, read safely (see `safe_load`)."""
    checkpoint = safe_load(path, trust=trust)
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{path}: expected a dict, got {type(checkpoint).__name__}')
    return checkpoint


def apply_checkpoint(model, checkpoint, kind, path):
    """Load the weights of an already read checkpoint dict (from `path`) with `load_checkpoint`'s rules."""
    if kind == 'pretrained':
        _load_pretrained(model, _pretrained_state_dict(checkpoint, path), path)
    else:
        if 'model' not in checkpoint:
            raise ValueError(f'{path}: no "model" entry (found entries: {sorted(checkpoint)})')
        _load_strict(model, dict(checkpoint['model']), path)


def _pretrained_state_dict(checkpoint, path):
    for entry in ('model_state_dict', 'model'):
        if entry in checkpoint:
            return dict(checkpoint[entry])
    if checkpoint and all(torch.is_tensor(v) for v in checkpoint.values()):
        return dict(checkpoint)
    raise ValueError(f'{path}: no "model_state_dict" or "model" entry and not a state dict '
                     f'itself (found entries: {sorted(checkpoint)})')


def _load_pretrained(model, state_dict, path):
    consume_prefix_in_state_dict_if_present(state_dict, 'module.')
    model_state = model.state_dict()
    # landmark network copies (static checkpoints) and the MAE decoder / mask token (MAE checkpoints)
    dropped = [k for k in state_dict if 'landmark' in k or k.startswith('decoder') or k == 'mask_token']
    state_dict = {k: v for k, v in state_dict.items() if k not in dropped}
    if dropped:
        print(f'Dropped {len(dropped)} landmark-network / MAE-decoder entries of the checkpoint')
    if 'ln_post.weight' in model_state:  # the video model's final norm is the image model's `norm`
        for suffix in ('weight', 'bias'):
            if f'norm.{suffix}' in state_dict:
                state_dict[f'ln_post.{suffix}'] = state_dict.pop(f'norm.{suffix}')
    # Covers the rule "drop patch_embed_prompt.proj.weight when its input channels differ" too.
    for key in list(state_dict):
        if key in model_state and state_dict[key].shape != model_state[key].shape:
            warnings.warn(f'{path}: dropping {key}: shape {tuple(state_dict[key].shape)} in the '
                          f'checkpoint, {tuple(model_state[key].shape)} in the model')
            del state_dict[key]
    result = model.load_state_dict(state_dict, strict=False)
    print(f'Loaded pre-trained weights from {path}')
    print(f'Missing keys (left at their initialisation): {result.missing_keys}')
    print(f'Unexpected keys (ignored): {result.unexpected_keys}')


def _load_strict(model, state_dict, path):
    consume_prefix_in_state_dict_if_present(state_dict, 'module.')
    model_state = model.state_dict()
    missing = [k for k in model_state if k not in state_dict]
    unexpected = [k for k in state_dict if k not in model_state]
    mismatched = [f'{k}: {tuple(state_dict[k].shape)} in the checkpoint, '
                  f'{tuple(model_state[k].shape)} in the model'
                  for k in model_state if k in state_dict and state_dict[k].shape != model_state[k].shape]
    if missing or unexpected or mismatched:
        raise ValueError(f'{path} does not match the model: missing keys {missing}, '
                         f'unexpected keys {unexpected}, shape mismatches {mismatched}')
    model.load_state_dict(state_dict, strict=True)


def describe(path, trust=False):
    """Lines telling what a checkpoint file holds: its entries, epoch, and every stored training argument."""
    checkpoint = read_checkpoint(path, trust=trust)
    lines = [f'{path}: entries {sorted(checkpoint)}']
    if 'epoch' in checkpoint:
        lines.append(f'epoch: {checkpoint["epoch"]!r}')
    stored = checkpoint.get('args')
    if stored is None:
        lines.append('no stored arguments')
    else:
        values = vars(stored) if isinstance(stored, argparse.Namespace) else dict(stored)
        lines += [f'args.{name} = {values[name]!r}' for name in sorted(values)]
    return lines
