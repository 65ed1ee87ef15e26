"""The inference layer: `Encoder`, a trained encoder loaded once from its checkpoint (its composition,
weights and the checkpoint's hash), which embeds zoos, NeRF files and NeRFs in memory. Embed, evaluate,
retrieve and the demo all go through it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from nerfspace.cache import file_hash
from nerfspace.checkpoint import load_into, load_weights, resolve_checkpoint
from nerfspace.embeddings import (
    SHARD_LIST,
    Embeddings,
    StoredEmbeddings,
    save_embeddings,
    shard_file,
    shard_holds,
    write_shard_list,
)
from nerfspace.encoders import ComposedEncoder, Composition
from nerfspace.encoders.inputs import cached_inputs, collate, field_inputs, nerf_inputs
from nerfspace.errors import InputError
from nerfspace.executors import Executor
from nerfspace.probe import Field
from nerfspace.zoo.items import zoo_items
from nerfspace.zoo.storage import NeRF, load_nerf

PREFIX = "encoder."  # the encoder's weights in a run's checkpoint (beside the decoder's and SigLIP's)


@dataclass
class Encoder:
    module: ComposedEncoder
    path: Path  # the checkpoint file
    checkpoint: str  # its sha256: what embeddings made by it record
    meta: dict  # the checkpoint's metadata (run config, epoch, validation metrics)

    @classmethod
    def load(cls, checkpoint: Path, fused: bool = False) -> Encoder:
        """The encoder of a checkpoint file or run folder, in eval mode; ``fused``: GMN parts run the
        opt-in CPU inference kernel."""
        path = resolve_checkpoint(checkpoint)
        state, meta = load_weights(path)
        try:
            composition = Composition.from_dict(meta["train"]["encoder"])
        except InputError as e:
            raise InputError(f"{path}: {e}") from e
        module = ComposedEncoder(composition, fused)
        load_into(module, {k[len(PREFIX) :]: v for k, v in state.items() if k.startswith(PREFIX)}, path)
        return cls(module.eval(), path, file_hash(path), meta)

    @property
    def composition(self) -> Composition:
        return self.module.composition

    @torch.no_grad()
    def embed_nerfs(self, nerfs: Sequence[NeRF]) -> torch.Tensor:
        """Embeddings [len(nerfs), width] of NeRFs in memory."""
        return self.module(collate([nerf_inputs(n, self.composition.needs) for n in nerfs]))

    @torch.no_grad()
    def embed_fields(self, fields: Sequence[Field]) -> torch.Tensor:
        """Embeddings [len(fields), width] of radiance fields given as functions (`nerfspace.probe.Field`),
        for encoders whose parts read only the field (`field`, `invariant`)."""
        return self.module(collate([field_inputs(f, self.composition.needs) for f in fields]))

    def embed(
        self, inputs: Sequence[Path], batch_size: int = 32, progress: Callable[[int, int], None] | None = None
    ) -> Embeddings:
        """Embed every NeRF of ``inputs``: zoo folders (their inputs cached in the zoo) and NeRF files."""
        todo = self._sources(inputs)
        return self._embed(todo, batch_size, lambda done: progress and progress(done, len(todo)))

    def embed_shards(
        self,
        inputs: Sequence[Path],
        folder: Path,
        rows: int,
        batch_size: int = 32,
        progress: Callable[[int, int], None] | None = None,
        executor: Executor = Executor(),
    ) -> StoredEmbeddings:
        """Embed every NeRF of ``inputs`` into a shard folder of ``rows`` rows per shard, one task of
        ``executor`` per shard, each written as it is done; a shard already there with the same items by
        this encoder is kept (resume). The shards' bytes do not depend on the executor."""
        if rows < 1:
            raise InputError(f"--shard-rows must be at least 1, got {rows}")
        todo = self._sources(inputs)
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / SHARD_LIST).unlink(missing_ok=True)  # incomplete until every shard is written
        parts = [todo[start : start + rows] for start in range(0, len(todo), rows)]
        shards = [(shard_file(folder, i), len(part)) for i, part in enumerate(parts)]
        tasks, done = [], 0
        for (file, n), part in zip(shards, parts, strict=True):
            if shard_holds(file, [item for item, _ in part], self.checkpoint):
                done += n
            else:
                tasks.append((str(self.path), self.checkpoint, part, str(file), batch_size))
        for i in executor.run(_embed_shard, tasks):
            done += len(tasks[i][2])
            if progress:
                progress(done, len(todo))
        return write_shard_list(
            folder, shards, self.composition.to_dict(), self.checkpoint, self.composition.width
        )

    @torch.no_grad()
    def _embed(
        self, todo: list[tuple[dict, Callable[[], dict]]], batch_size: int, done: Callable[[int], None]
    ) -> Embeddings:
        vectors = []
        for i in range(0, len(todo), batch_size):
            vectors.append(self.module(collate([make() for _, make in todo[i : i + batch_size]])))
            done(min(i + batch_size, len(todo)))
        return Embeddings(
            torch.cat(vectors), [t[0] for t in todo], self.composition.to_dict(), self.checkpoint
        )

    def check(self, checkpoint: str, source: Path) -> None:
        """Refuse embeddings that another encoder made (``checkpoint``: the one they record)."""
        if checkpoint != self.checkpoint:
            raise InputError(
                f"{source}: embeddings come from another encoder (checkpoint {checkpoint[:12]}), not "
                f"{self.path}'s ({self.checkpoint[:12]}); embed them with this encoder"
            )

    def _sources(self, inputs: Sequence[Path]) -> list[tuple[dict, Callable[[], dict]]]:
        """(item, its inputs' maker) for every NeRF of the given zoos and NeRF files (each file read once,
        here, so that a bad one fails before any work)."""
        needs = self.composition.needs
        out = []
        for inp in map(Path, inputs):
            if inp.is_dir():
                for it in zoo_items(inp):
                    item = {
                        "object": it.object,
                        "category": it.category,
                        "preset": it.preset,
                        "split": it.split,
                    }
                    if it.defect:  # a defective part of an inspection zoo
                        item.update(defect=it.defect, severity=f"{it.severity:g}")
                    out.append(
                        (
                            {**item, "file": str(it.file)},
                            partial(cached_inputs, it.file, inp / "cache", needs),
                        )
                    )
            elif inp.exists():
                nerf = load_nerf(inp)
                m = nerf.meta
                item = {
                    "object": m.get("object_id", inp.stem),
                    "category": m.get("category", ""),
                    "split": "",
                }
                if m.get("defect"):
                    item.update(defect=m["defect"], severity=m.get("severity", ""))
                out.append(
                    ({**item, "preset": nerf.preset, "file": str(inp)}, partial(nerf_inputs, nerf, needs))
                )
            else:
                raise InputError(f"{inp}: no such zoo folder or NeRF file")
        if not out:
            raise InputError("nothing to embed")
        return out


def _embed_shard(
    checkpoint: str,
    digest: str,
    part: list[tuple[dict, Callable[[], dict]]],
    file: str,
    batch_size: int,
    threads: int,
) -> None:
    """One shard of `Encoder.embed_shards` (an `Executor` task): the encoder loaded here, its rows
    embedded and written; refused if the checkpoint changed since the command began."""
    torch.set_num_threads(threads)
    encoder = Encoder.load(Path(checkpoint))
    if encoder.checkpoint != digest:
        raise InputError(f"{checkpoint}: changed while embedding; run the command again")
    save_embeddings(Path(file), encoder._embed(part, batch_size, lambda done: None))
