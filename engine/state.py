"""Training checkpoints in the original layout (model, optimizer, epoch, scaler, args) plus what exact resume needs."""
import random

import numpy as np
import torch

from models.checkpoint import load_checkpoint, save_checkpoint


def rng_state() -> dict:
    """Python, NumPy and torch RNG states as plain types and tensors (loadable with weights_only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(path, *, model, optimizer, scaler, epoch, args, sdl=None, model_ema=None,
                        best_metric=None, best_epoch=None, bad_clips=None) -> None:
    """Write a checkpoint atomically. `epoch` is an int, or 'best' for checkpoint-best.pth as the original."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "args": args,
        "best_metric": best_metric,
        "best_epoch": best_epoch,
        "rng": rng_state(),
    }
    if sdl is not None:
        state["sdl"] = sdl.state_dict()
    if model_ema is not None:
        state["model_ema"] = model_ema.module.state_dict()
    if bad_clips:
        state["bad_clips"] = bad_clips  # {split: {clip id: reason}} skipped with --skip_bad_clips
    save_checkpoint(state, path)


def resume_training_state(path, *, model, optimizer, scaler, sdl=None, model_ema=None, trust=False) -> dict:
    """Restore everything `save_training_state` wrote; returns the checkpoint (start at its epoch + 1)."""
    checkpoint = load_checkpoint(model, path, "resume", trust=trust)
    if not isinstance(checkpoint.get("epoch"), int):
        raise ValueError(f"{path}: cannot resume training from a checkpoint whose epoch is "
                         f"{checkpoint.get('epoch')!r}; use --finetune (weights only) or --eval instead")
    if checkpoint.get("optimizer") is None:
        raise ValueError(f"{path}: holds no optimizer state, so training cannot resume from it")
    optimizer.load_state_dict(checkpoint["optimizer"])
    if scaler is not None and checkpoint.get("scaler"):
        scaler.load_state_dict(checkpoint["scaler"])
    for name, module in (("sdl", sdl), ("model_ema", model_ema and model_ema.module)):
        if module is None:
            continue
        if name not in checkpoint:
            raise ValueError(f"{path}: has no '{name}' state but this run uses it "
                             f"({'--sdl' if name == 'sdl' else '--model_ema'}); resume with the flags of the saved run")
        module.load_state_dict(checkpoint[name])
    if "rng" in checkpoint:
        set_rng_state(checkpoint["rng"])
    return checkpoint
