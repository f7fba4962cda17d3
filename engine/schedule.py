"""Per-step schedules: linear warmup from 0 then cosine decay (learning rate and weight decay)."""
import math

import numpy as np


def cosine_scheduler(base_value: float, final_value: float, epochs: int, steps_per_epoch: int,
                     warmup_epochs: int = 0, warmup_steps: int = -1) -> np.ndarray:
    """One value per optimisation step: `warmup_steps` (or warmup_epochs * steps_per_epoch) steps rising
    linearly from 0 to base_value, then a cosine from base_value to final_value over the remaining steps."""
    total = epochs * steps_per_epoch
    warmup = warmup_steps if warmup_steps > 0 else warmup_epochs * steps_per_epoch
    warmup = min(warmup, total)
    warmup_values = np.linspace(0.0, base_value, warmup)
    steps = np.arange(total - warmup)
    cosine_values = final_value + 0.5 * (base_value - final_value) * (
        1 + np.cos(math.pi * steps / max(len(steps), 1)))
    return np.concatenate([warmup_values, cosine_values])
