"""One training epoch: per-step lr/wd schedule, mixup, landmark features, AMP, accumulation, clipping, EMA, SDL."""
import contextlib
import math

import torch

from utils.distributed import stop_point_of_all

from .sdl import sdl_active


class NonFiniteLossError(RuntimeError):
    """Raised when the training loss becomes NaN or infinite."""


def apply_schedule(optimizer, lr: float, weight_decay: float) -> None:
    """Set every group's lr (times its lr_scale) and the weight decay of the groups that decay."""
    for group in optimizer.param_groups:
        group["lr"] = float(lr) * group.get("lr_scale", 1.0)
        if group["weight_decay"] > 0:
            group["weight_decay"] = float(weight_decay)


def train_one_epoch(model, landmark, criterion, loader, optimizer, device, epoch, *, steps_per_epoch,
                    update_freq, lr_schedule, wd_schedule, scaler=None, amp_dtype=None, clip_grad=None,
                    model_ema=None, mixup_fn=None, sdl=None, sdl_update_freq=1, log_writer=None,
                    progress=None, steps_after=0):
    """Train for one epoch and return the averaged statistics.

    `progress` is a ProgressLogger (its meters collect the statistics); `steps_after` is the number of
    loader steps left in the run after this epoch (for the run's ETA). The SDL term is added from
    engine.sdl.SDL_START_EPOCH on; in those epochs divisible by `sdl_update_freq` the SDL queues are refreshed
    after every step from a gradient-free pass of the (still train-mode) model on the un-mixed batch.
    """
    model.train()
    optimizer.zero_grad()
    autocast = torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)
    use_sdl_loss = sdl is not None and sdl_active(epoch)
    refresh_sdl = use_sdl_loss and epoch % sdl_update_freq == 0
    params = [p for p in model.parameters() if p.requires_grad]
    total_steps = steps_per_epoch * update_freq
    batches = progress.log_every(loader, total_steps, samples_per_step=loader.batch_size, steps_after=steps_after)
    for data_iter_step, (videos, targets, _) in enumerate(batches):
        step = data_iter_step // update_freq
        if step >= steps_per_epoch:
            break
        stop_point_of_all()  # a stop ends the epoch here, before the step, on every process
        global_step = epoch * steps_per_epoch + step
        is_update_step = (data_iter_step + 1) % update_freq == 0
        if data_iter_step % update_freq == 0:
            apply_schedule(optimizer, lr_schedule[global_step], wd_schedule[global_step])

        videos = videos.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        samples, soft_targets = videos, targets
        if mixup_fn is not None:  # timm mixes in place: keep the clean batch when the SDL queues need it
            samples, soft_targets = mixup_fn(videos.clone() if refresh_sdl else videos, targets)

        sync = contextlib.nullcontext() if is_update_step or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            with autocast:
                logits, features = model(samples, landmark(samples))
                loss = criterion(logits, soft_targets)
                sdl_loss = sdl.loss(logits, features, epoch) if use_sdl_loss else None
                if sdl_loss is not None:
                    loss = loss + sdl_loss
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise NonFiniteLossError(
                    f"loss is {loss_value} at epoch {epoch}, step {step} (iteration {data_iter_step} of the epoch); "
                    "training stopped, the last checkpoint written is from the previous epoch")
            scaled = loss / update_freq
            (scaler.scale(scaled) if scaler is not None else scaled).backward()

        grad_norm = None
        if is_update_step:
            if scaler is not None:
                scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, clip_grad if clip_grad else float("inf")).item()
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad()
            if model_ema is not None:
                model_ema.update(getattr(model, "module", model))  # unwrap DDP

        if refresh_sdl:
            with torch.no_grad(), autocast:
                clean_logits, clean_features = model(videos, landmark(videos))
            sdl.update(clean_features, clean_logits, targets)

        lrs = [group["lr"] for group in optimizer.param_groups]
        decays = [group["weight_decay"] for group in optimizer.param_groups if group["weight_decay"] > 0]
        stats = {
            "loss": loss_value,
            "sdl_loss": sdl_loss.item() if sdl_loss is not None else None,
            "class_acc": (logits.argmax(-1) == targets).float().mean().item() if mixup_fn is None else None,
            "lr": max(lrs), "min_lr": min(lrs),
            "weight_decay": decays[0] if decays else None,
            "grad_norm": grad_norm,
            "loss_scale": scaler.get_scale() if scaler is not None else None,
        }
        progress.update(**stats)
        if log_writer is not None:
            for name, value in stats.items():
                if value is not None:
                    log_writer.add_scalar(f"train/{name}", value, global_step)
    return progress.summary()
