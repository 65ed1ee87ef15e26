"""Features of a field invariant to its capture: yaw, shift and scale of the object, and the strength of
the light baked into its colours. The field (`nerfspace.probe.Field`) is read on a cylinder about the
vertical through its density centre, radii and heights in units of its RMS radius; each ring keeps the
magnitudes of its Fourier coefficients over the angle. Colour enters as chromaticity (r, g over
r + g + b): Lambertian shading scales the three channels alike, so it cancels.

`field_invariant` is both the `field-invariant` no-learning baseline and the input of the `invariant`
encoder part (`nerfspace.encoders.invariant`).
"""

from __future__ import annotations

import math

import torch

from nerfspace.probe import Field, field_values, query_field

# The grid that density moments are taken on: wider than the scene box, so that an object moved by a
# capture's frame (rotated, shifted) is still covered.
MOMENT_EXTENT = 0.9
MOMENT_RES = 48
_lin = (torch.arange(MOMENT_RES, dtype=torch.float32) + 0.5) / MOMENT_RES * 2 - 1
MOMENT_POINTS = torch.cartesian_prod(_lin, _lin, _lin) * MOMENT_EXTENT
MOMENT_STEP = 2 * MOMENT_EXTENT / MOMENT_RES

# The cylinder, in units of the RMS radius about the density centre: CYL_RADII rings out to CYL_MAX_RADIUS
# times CYL_HEIGHTS levels over +-CYL_MAX_HEIGHT, each the mean of CYL_SUB x CYL_SUB samples (a blur that
# tolerates small tilts and the sampling noise of the centre), at CYL_ANGLES angles.
CYL_RADII = 6
CYL_MAX_RADIUS = 2.4
CYL_HEIGHTS = 12
CYL_MAX_HEIGHT = 2.4
CYL_SUB = 2
CYL_ANGLES = 64
CYL_HARMONICS = 12  # |FFT| over the angle kept for harmonics 0 .. CYL_HARMONICS - 1
CYL_CHANNELS = 3  # chromaticity r and g (times the squashed density), squashed density
INVARIANT_WIDTH = CYL_RADII * CYL_HEIGHTS * CYL_HARMONICS * CYL_CHANNELS
MIN_BRIGHTNESS = 1e-3  # r + g + b below this has no chromaticity (reads 0)


def moments(field: Field) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Points [M, 3] relative to the density centre, their weights [M] (opacity over a grid step, summing
    to 1), the centre [3] and the weighted second moments [3, 3], all on the `MOMENT_POINTS` grid."""
    _, sigma = query_field(field, MOMENT_POINTS)
    w = 1 - torch.exp(-sigma.double() * MOMENT_STEP)
    keep = w > 0
    x, w = MOMENT_POINTS[keep].double(), w[keep]
    if w.sum() <= 0:  # an empty field: the box's centre and a unit frame
        return torch.zeros(1, 3).double(), torch.ones(1).double(), torch.zeros(3), torch.eye(3).double() / 3
    w = w / w.sum()
    centre = w @ x
    d = x - centre
    return d, w, centre.float(), (d * w[:, None]).T @ d


def _cylinder(centre: torch.Tensor, rms: float) -> torch.Tensor:
    """[CYL_RADII * CYL_SUB, CYL_HEIGHTS * CYL_SUB, CYL_ANGLES, 3] points of a cylinder about the vertical
    through ``centre``: rings and levels at the centres of equal radius and height bins."""
    nr, nz = CYL_RADII * CYL_SUB, CYL_HEIGHTS * CYL_SUB
    r = (torch.arange(nr) + 0.5) / nr * CYL_MAX_RADIUS * rms
    z = ((torch.arange(nz) + 0.5) / nz * 2 - 1) * CYL_MAX_HEIGHT * rms
    a = torch.arange(CYL_ANGLES) * (2 * math.pi / CYL_ANGLES)
    rr, zz, aa = torch.meshgrid(r, z, a, indexing="ij")
    return centre + torch.stack([rr * aa.cos(), rr * aa.sin(), zz], -1)


def field_invariant(field: Field) -> torch.Tensor:
    """[INVARIANT_WIDTH]: on the cylinder (each ring the mean over a small radius-height bin), the
    chromaticity r and g times sigma / (1 + sigma), and sigma / (1 + sigma), as the magnitudes of their
    Fourier coefficients over the angle, harmonics 0 .. CYL_HARMONICS - 1."""
    _, _, centre, cov = moments(field)
    rms = float(cov.trace().clamp(min=1e-12).sqrt())
    v = field_values(field, _cylinder(centre, rms).reshape(-1, 3))
    v = v.reshape(CYL_RADII, CYL_SUB, CYL_HEIGHTS, CYL_SUB, CYL_ANGLES, 4).mean((1, 3))
    rgb, density = v[..., :3], v[..., 3:]
    brightness = rgb.sum(-1, keepdim=True)
    chroma = torch.where(brightness > MIN_BRIGHTNESS, rgb / brightness.clamp_min(MIN_BRIGHTNESS), 0.0)
    channels = torch.cat([chroma[..., :2] * density, density], -1)
    spectrum = torch.fft.rfft(channels, dim=2)[:, :, :CYL_HARMONICS].abs() / CYL_ANGLES
    return spectrum.reshape(-1)
