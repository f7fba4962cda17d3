"""Which device a run uses, and the autocast precision on it."""
import torch

AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "none": None}


class DeviceError(ValueError):
    """The device or precision asked for is not available here; the message says what to pass instead."""


def choose_device(requested: str | None = None, cpu_only: bool = False) -> str:
    """`requested` after checking that it exists; by default CUDA when available (the CPU with `cpu_only`)."""
    if requested is None:
        return "cuda" if torch.cuda.is_available() and not cpu_only else "cpu"
    try:
        kind = torch.device(requested).type
    except RuntimeError as error:
        raise DeviceError(f"--device {requested!r} is not a device name (expected cpu, cuda or cuda:N)") from error
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"--device {requested} was asked for but no CUDA device is available; use --device cpu")
    if cpu_only and kind != "cpu":
        raise DeviceError(f"--device {requested}: int8 runs on the CPU only; use --device cpu")
    return requested


def has_bfloat16(device: torch.device) -> bool:
    """Native bfloat16 on a CUDA device (compute capability 8.0 or newer: A100, H100, RTX 30xx and later)."""
    if device.index is None:  # the current CUDA device
        return torch.cuda.is_bf16_supported(including_emulation=False)
    with torch.cuda.device(device.index):
        return torch.cuda.is_bf16_supported(including_emulation=False)


def training_autocast_dtype(device: torch.device, name: str) -> torch.dtype | None:
    """`--amp_dtype` on `device`: None on the CPU (float32) or for 'none'; bfloat16 only where the GPU has it."""
    if name not in AMP_DTYPES:
        raise DeviceError(f"--amp_dtype {name!r}: expected one of {sorted(AMP_DTYPES)}")
    dtype = AMP_DTYPES[name] if device.type == "cuda" else None
    if dtype == torch.bfloat16 and not has_bfloat16(device):
        raise DeviceError(f"{torch.cuda.get_device_name(device)} has no bfloat16 support (compute capability < 8.0); "
                          "pass --amp_dtype float16 (with a gradient scaler) or --amp_dtype none")
    return dtype


def inference_autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Analysis precision: bfloat16 on a GPU that has it, else float16 (no gradients, so no scaler is needed);
    None (float32) on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if has_bfloat16(device) else torch.float16
