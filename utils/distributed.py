"""torch.distributed helpers: works unchanged without initialisation (plain python) and under torchrun."""
import os

import torch
import torch.distributed as dist

from .stop import Stopped, requested, stop_point


def init_distributed_mode(args) -> None:
    """Join the torchrun (env://) process group when launched by torchrun; otherwise run as one process."""
    args.rank, args.world_size, args.local_rank = torchrun_ranks()
    args.distributed = args.world_size > 1
    if not args.distributed:
        return
    args.device = local_device(args.device, args.local_rank)
    dist.init_process_group(backend="nccl" if args.device.startswith("cuda") else "gloo", init_method="env://",
                            world_size=args.world_size, rank=args.rank)
    dist.barrier()


def local_device(device: str, local_rank: int) -> str:
    """A process's device under torchrun: its own GPU (`cuda:LOCAL_RANK`, made current), or the CPU."""
    if not device.startswith("cuda"):
        return device
    torch.cuda.set_device(local_rank)
    return f"cuda:{local_rank}"


def torchrun_ranks() -> tuple[int, int, int]:
    """(rank, world size, local rank) as torchrun sets them, without joining a process group; (0, 1, 0) without
    torchrun (RANK and WORLD_SIZE not both set)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1, 0
    return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_gather_objects(obj) -> list:
    """Every rank's `obj`, in rank order (a one-element list when not distributed)."""
    if not is_distributed():
        return [obj]
    gathered = [None] * get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def all_reduce_mean(value: float) -> float:
    if not is_distributed():
        return value
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.item() / get_world_size()


def stop_point_of_all() -> None:
    """utils.stop's safe point agreed by every process (a collective: each calls it at the same step), so that all
    stop at the same step and none is left waiting in a collective."""
    if not is_distributed():
        stop_point()
    elif all_reduce_mean(float(requested())) > 0:
        raise Stopped("stopped on request")
