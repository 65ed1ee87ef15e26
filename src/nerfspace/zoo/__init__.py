"""The NeRF zoo: fitting, storage, manifest, splits."""

from nerfspace.zoo.build import ZooConfig, build_zoo, load_manifest, plan
from nerfspace.zoo.fitting import FitConfig, FitResult, fit, fit_config
from nerfspace.zoo.info import zoo_info
from nerfspace.zoo.storage import NeRF, load_nerf, read_metadata, save_nerf

__all__ = [
    "ZooConfig",
    "build_zoo",
    "load_manifest",
    "plan",
    "FitConfig",
    "FitResult",
    "fit",
    "fit_config",
    "zoo_info",
    "NeRF",
    "load_nerf",
    "read_metadata",
    "save_nerf",
]
