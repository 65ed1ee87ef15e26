import torch
from safetensors.torch import save_file

from nerfspace.cache import cached_tensors, file_hash


def test_an_entry_is_built_once_and_damaged_or_stale_entries_are_rebuilt(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return {"a": torch.arange(3.0), "b": torch.ones(2)}

    entry = tmp_path / "sub" / "x.safetensors"
    first = cached_tensors(entry, ("a", "b"), build)
    again = cached_tensors(entry, ("a", "b"), build)
    assert len(calls) == 1 and torch.equal(first["a"], again["a"])
    entry.write_bytes(entry.read_bytes()[:20])  # truncated by a crash of some other tool
    assert torch.equal(cached_tensors(entry, ("a", "b"), build)["b"], torch.ones(2)) and len(calls) == 2
    save_file({"a": torch.zeros(1)}, entry)  # an older layout
    cached_tensors(entry, ("a", "b"), build)
    assert len(calls) == 3 and not list(entry.parent.glob(".*.tmp"))


def test_file_hash_follows_the_content(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"one")
    h = file_hash(f)
    f.write_bytes(b"two")
    assert file_hash(f) != h


def test_an_unwritable_cache_folder_only_costs_the_rebuild(tmp_path, monkeypatch):
    def read_only(path, data):
        raise PermissionError(13, "Read-only file system", str(path))

    monkeypatch.setattr("nerfspace.cache.atomic_write_bytes", read_only)
    t = cached_tensors(tmp_path / "x.safetensors", ("a",), lambda: {"a": torch.ones(1)})
    assert torch.equal(t["a"], torch.ones(1)) and not (tmp_path / "x.safetensors").exists()
