"""Data-parallel helpers: a process group from torchrun's environment (gloo on CPU)."""
import os

import torch.distributed as dist


def init_from_env():
    """Join the process group when started by torchrun (WORLD_SIZE > 1); returns (rank, world size)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return rank(), world_size


def rank():
    return dist.get_rank() if dist.is_initialized() else 0


def is_main():
    return rank() == 0


def barrier():
    if dist.is_initialized():
        dist.barrier()


def shutdown():
    if dist.is_initialized():
        dist.destroy_process_group()
