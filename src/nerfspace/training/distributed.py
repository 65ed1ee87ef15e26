"""Training on several processes (torchrun): which rank this is, its share of a step's NeRFs, and the
step's embeddings gathered from every rank.

Under ``torchrun --nproc-per-node N -m nerfspace train ...`` every rank draws the same step (same
objects, views, rays) as the single-process run, encodes a contiguous share of its NeRFs, and gathers
all the embeddings (with their gradients) so that every rank computes the same loss as the single
process. The encoder is wrapped in DistributedDataParallel: its gradient is the mean over ranks of N
times the gradient through each rank's share, which is the single process's gradient; the decoder and
SigLIP see the whole step on every rank and get it directly. Rank 0 alone writes checkpoints and logs
and validates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.distributed.nn.functional import all_gather


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sizes(self, n: int) -> list[int]:
        """How many of ``n`` items each rank encodes (the first ``n % world`` ranks one more)."""
        base, extra = divmod(n, self.world)
        return [base + (r < extra) for r in range(self.world)]

    def share(self, n: int) -> slice:
        """This rank's contiguous share of ``n`` items."""
        sizes = self.sizes(n)
        start = sum(sizes[: self.rank])
        return slice(start, start + sizes[self.rank])

    def gather(self, z: torch.Tensor, n: int) -> torch.Tensor:
        """Every rank's share [share, D] of a step's ``n`` embeddings joined in order [n, D], keeping the
        gradient to each rank's own share."""
        if self.world == 1:
            return z
        sizes = self.sizes(n)
        padded = torch.cat([z, z.new_zeros(max(sizes) - len(z), z.shape[1])])
        return torch.cat([part[:size] for part, size in zip(all_gather(padded), sizes, strict=True)])

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def start(device: str) -> Ranks:
    """This process's rank: joins torchrun's process group (gloo on CPU, nccl on CUDA) when started by
    torchrun with more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Ranks()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size())


def stop(ranks: Ranks) -> None:
    if ranks.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
