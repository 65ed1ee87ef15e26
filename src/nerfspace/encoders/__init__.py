"""Encoders as compositions of parts: the GMN over the parameter graph (`gmn`, with an opt-in fused CPU
kernel in `gmn_fused`), the field encoder over the field at fixed points (`field`); `compose` holds the
composition, its presets and the conversion of checkpoints from before compositions."""

from nerfspace.encoders.compose import (
    DEFAULT_PRESET,
    PRESETS,
    ComposedEncoder,
    Composition,
    preset,
    upgrade_legacy,
)
from nerfspace.encoders.field import FieldEncoderConfig
from nerfspace.encoders.gmn import GMNConfig

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "ComposedEncoder",
    "Composition",
    "FieldEncoderConfig",
    "GMNConfig",
    "preset",
    "upgrade_legacy",
]
