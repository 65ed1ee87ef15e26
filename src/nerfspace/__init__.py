"""nerfspace: learning on NeRF weights."""

__version__ = "0.1.0"
