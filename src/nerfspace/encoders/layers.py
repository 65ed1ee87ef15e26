"""Small building blocks shared by the encoder parts."""

from __future__ import annotations

from torch import nn

from nerfspace.errors import InputError

MAX_SIZE = 1 << 16  # any width, depth or count of an encoder config above this is a typo


def mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    """Linear, SiLU, Linear."""
    return nn.Sequential(nn.Linear(inp, hidden), nn.SiLU(), nn.Linear(hidden, out))


def check_sizes(config: object, *names: str, minimum: int = 1) -> None:
    """Refuse a size field of a config that is not an int in [minimum, MAX_SIZE] (a bool is no size)."""
    for name in names:
        v = getattr(config, name)
        if isinstance(v, bool) or not isinstance(v, int) or not minimum <= v <= MAX_SIZE:
            kind = type(config).__name__
            raise InputError(f"{kind}.{name} must be an integer in [{minimum}, {MAX_SIZE}], got {v!r:.40}")


def check_flags(config: object, *names: str) -> None:
    """Refuse a flag of a config that is not a bool (a JSON "false" string is not false)."""
    for name in names:
        v = getattr(config, name)
        if not isinstance(v, bool):
            raise InputError(f"{type(config).__name__}.{name} must be true or false, got {v!r:.40}")
