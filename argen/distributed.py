"""The torchrun / ``accelerate launch`` rank set-up shared by the stages that split work across GPUs.

Launched by ``torchrun --nproc_per_node N`` (or ``accelerate launch``), each process reads its rank from
the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), takes its share of the work on its own GPU, and
rank 0 assembles the outputs once every rank is done. Run plainly, there is one rank and every call here
is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Ranks:
    """This process's place among the launched processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def device(self) -> str:
        """``cuda:<local rank>`` under a launcher on a machine with CUDA; "" (the params' device) otherwise."""
        return f"cuda:{self.local_rank}" if self.distributed and torch.cuda.is_available() else ""

    def mine(self, index: int) -> bool:
        """Whether work item ``index`` is this rank's (items rank, rank + world, ...)."""
        return index % self.world == self.rank

    def start(self) -> None:
        """Join the process group (NCCL on GPUs, Gloo on CPUs)."""
        if self.distributed:
            torch.distributed.init_process_group("nccl" if self.device else "gloo")

    def barrier(self) -> None:
        """Wait until every rank reaches this point."""
        if self.distributed:
            torch.distributed.barrier()

    def finish(self) -> bool:
        """Wait for every rank, leave the group; True on the rank that assembles the outputs (rank 0)."""
        if self.distributed:
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()
        return self.rank == 0


def launched_ranks() -> Ranks:
    """The ranks torchrun / accelerate set in the environment; one rank when run plainly."""
    return Ranks(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                 int(os.environ.get("LOCAL_RANK", 0)))
