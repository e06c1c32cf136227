"""Data-parallel helpers: the device of this process and a process group from torchrun's
environment (gloo on CPUs, NCCL on GPUs)."""
import os
from datetime import timedelta

import torch
import torch.distributed as dist

from hdnn.errors import HdnnError

USE_GPU_CHOICES = ("no", "yes", "optional")


def select_device(use_gpu="no"):
    """The device of this process, as Kaldi's --use-gpu: ``no`` the CPU; ``yes`` the GPU
    numbered LOCAL_RANK (torchrun's rank on this node), an error without one; ``optional`` that
    GPU when there is one, else the CPU."""
    if use_gpu not in USE_GPU_CHOICES:
        raise HdnnError(f"--use-gpu {use_gpu}: use one of {', '.join(USE_GPU_CHOICES)}")
    if use_gpu == "no" or (use_gpu == "optional" and not torch.cuda.is_available()):
        return torch.device("cpu")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not torch.cuda.is_available():
        raise HdnnError("--use-gpu yes: no CUDA device is visible to torch (use --use-gpu no or optional)")
    if local_rank >= torch.cuda.device_count():
        raise HdnnError(f"--use-gpu {use_gpu}: process {local_rank} on this node has no GPU of its own "
                        f"({torch.cuda.device_count()} visible; start at most that many per node)")
    # cuBLAS reproduces its results only with a fixed workspace (CUDA's reproducibility notes).
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


# Rank 0 prepares the exp dir alone (feature set-up, global CMVN, prior counts) while the others
# wait at a barrier: on a large corpus that outlasts NCCL's default 10-minute timeout.
TIMEOUT = timedelta(hours=2)


def init_from_env(device=torch.device("cpu")):
    """Join the process group when started by torchrun (WORLD_SIZE > 1), over NCCL when this
    process trains on a GPU (bound to it), else gloo; returns (rank, world size)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            dist.init_process_group("nccl", timeout=TIMEOUT, device_id=device)
        else:
            dist.init_process_group("gloo", timeout=TIMEOUT)
    return rank(), world_size


def all_reduce_sum(tensor):
    """``tensor`` summed over the ranks (in place on the CPU tensor; NCCL reduces on the GPU)."""
    if not dist.is_initialized():
        return tensor
    if dist.get_backend() == "nccl":
        on_gpu = tensor.cuda()
        dist.all_reduce(on_gpu)
        tensor.copy_(on_gpu.cpu())
    else:
        dist.all_reduce(tensor)
    return tensor


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
