"""Foreign NeRF formats in and out: the paper's dataset layout (tiny-cuda-nn weights), plain PyTorch
state dicts, and the one safe reader of PyTorch pickles."""

from nerfspace.interop.gmnerf import read_gmnerf_nerf, write_gmnerf_nerf
from nerfspace.interop.gmnerf_zoo import CLASS_IDS, GmnerfImport, import_gmnerf
from nerfspace.interop.torch_state import read_state_dict, write_state_dict
from nerfspace.interop.torchfile import UnsafeFileError, load_torch

__all__ = [
    "CLASS_IDS",
    "GmnerfImport",
    "UnsafeFileError",
    "import_gmnerf",
    "load_torch",
    "read_gmnerf_nerf",
    "read_state_dict",
    "write_gmnerf_nerf",
    "write_state_dict",
]
