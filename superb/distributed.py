"""Runs launched by ``torchrun``: which process this is, and the few collective steps superb needs.

``torchrun --nproc_per_node N -m superb fit|extract …`` starts N copies of the command with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` set (and ``MASTER_ADDR``/``MASTER_PORT`` for the rendezvous; across
machines, ``--nnodes`` and ``--rdzv-endpoint``). Without them a run is one process and every helper here
is a no-op, so single-process code paths stay as they were. The process group uses NCCL when each
process has a GPU and gloo otherwise (CPU runs and the tests). A worker ends when the torchrun agent does
(``superb.launcher``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from superb.launcher import follow_launcher

# Rank 0 may evaluate (ASR with a language model) or scan a corpus for a long time while the others wait
# in a collective; the default 30 minutes would kill such runs.
TIMEOUT = dt.timedelta(hours=int(os.environ.get("SUPERB_DIST_TIMEOUT_HOURS", "12")))


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """The process that logs, evaluates and writes shared files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def context() -> Context:
    """This process's place in a ``torchrun`` launch (one process when not launched so)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        from superb.errors import ConfigError

        raise ConfigError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (set by torchrun)") from None
    return Context(rank, world, local)


def init(device: torch.device | None = None) -> Context:
    """Join the process group once (a no-op for one process); returns this process's context."""
    follow_launcher()  # the CLI has armed it already; library callers under torchrun get it here
    ctx = context()
    if ctx.distributed and not dist.is_initialized():
        use_nccl = device is not None and device.type == "cuda"
        dist.init_process_group("nccl" if use_nccl else "gloo", timeout=TIMEOUT,
                                **({"device_id": device} if use_nccl else {}))
    return ctx


def device_for(ctx: Context, device: torch.device) -> torch.device:
    """Each process of a GPU launch takes its own device (``cuda:LOCAL_RANK``)."""
    if ctx.distributed and device.type == "cuda":
        torch.cuda.set_device(ctx.local_rank)
        return torch.device("cuda", ctx.local_rank)
    return device


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_sum(values: list[float]) -> list[float]:
    """Element-wise sum over processes (the values themselves for one process)."""
    if not dist.is_initialized():
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return tensor.cpu().tolist()


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` on every process; JSON data only (sent as text, so nothing is unpickled as code)."""
    if not dist.is_initialized():
        return value
    box = [json.dumps(value)]
    dist.broadcast_object_list(box, src=0)
    return json.loads(box[0])


def finish() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
