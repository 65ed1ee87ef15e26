"""3D Gaussian splats as ground truth: Gaussians with a mean, a covariance (scales and a rotation), an
opacity and a colour, posed like `SDFObject`, rendered the way their makers render them: each Gaussian
projected to a 2-D Gaussian on the image (with 3DGS's 0.3 px^2 low-pass), the Gaussians covering a pixel
composited front to back by depth. A point cloud is splats too: one round Gaussian per point.

As a radiance field (`Splats.radiance_field`, points -> rgb, density): the density is the sum of the
Gaussians, each scaled so that a ray crossing it along its thinnest axis loses what its opacity takes,
-log(1 - opacity) = integral of its density; the colour is the density-weighted mean of theirs.

Colours are the splats' own radiance (baked light): a capture's light does not change them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from nerfspace.frames import Similarity, quaternion_matrix
from nerfspace.render import BACKGROUND, Cameras, project

MAX_ALPHA = 0.99  # 3DGS caps a Gaussian's opacity on a pixel
MIN_ALPHA = 1.0 / 255.0  # and drops pairs below this
LOW_PASS = 0.3  # px^2 added to every projected covariance (3DGS's anti-aliasing dilation)
EXTENT = 3.0  # a Gaussian's footprint: this many standard deviations
NEAR = 0.01
MAX_PAIRS = 1 << 22  # (pixel, Gaussian) pairs processed at once


@dataclass(frozen=True, eq=False)
class Splats:
    """Gaussians in the canonical frame: ``means`` [N, 3], ``covariances`` [N, 3, 3], ``opacities`` [N] in
    (0, 1], ``colors`` [N, 3] in [0, 1]. ``pose`` places them in the world (a capture's frame)."""

    means: Tensor
    covariances: Tensor
    opacities: Tensor
    colors: Tensor
    pose: Similarity | None = field(default=None, repr=False)

    @classmethod
    def from_scales(cls, means: Tensor, scales: Tensor, rotations: Tensor, opacities: Tensor, colors: Tensor):
        """Gaussians with per-axis standard deviations ``scales`` [N, 3] turned by quaternions [N, 4]."""
        rot = quaternion_matrix(rotations) * scales[:, None, :]
        return cls(means, rot @ rot.transpose(1, 2), opacities, colors)

    def _world(self) -> tuple[Tensor, Tensor]:
        if self.pose is None:
            return self.means, self.covariances
        rot = self.pose.rotation.to(self.means) * self.pose.scale
        return self.pose.apply(self.means), rot @ self.covariances @ rot.T

    @property
    def bounds(self) -> Tensor:
        """[2, 3] world box holding every Gaussian's footprint."""
        means, cov = self._world()
        reach = EXTENT * torch.diagonal(cov, dim1=1, dim2=2).clamp_min(0).sqrt()
        return torch.stack([(means - reach).amin(0), (means + reach).amax(0)])

    def posed(self, pose: Similarity, light: Tensor | None = None) -> Splats:
        """These splats moved by ``pose`` (after their own pose); ``light`` is ignored (baked colours)."""
        return replace(self, pose=pose if self.pose is None else self.pose.then(pose))

    def radiance_field(self) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
        """The splats as a radiance field (a `nerfspace.probe.Field`): points [N, 3] -> (rgb [N, 3],
        density [N]), summing each Gaussian within EXTENT standard deviations of a point."""
        from scipy.spatial import cKDTree

        means, cov = self._world()
        inv = torch.linalg.inv(cov.double()).float()
        std = torch.linalg.eigvalsh(cov.double()).clamp_min(1e-20).sqrt().float()  # ascending
        peak = -torch.log1p(-self.opacities.clamp_max(MAX_ALPHA)) / (math.sqrt(2 * math.pi) * std[:, 0])
        reach = EXTENT * std[:, 2]
        buckets = torch.ceil(torch.log2(reach / reach.min())).long()  # one tree per size, so one large
        trees = []  # Gaussian does not widen every search
        for b in buckets.unique().tolist():
            idx = torch.nonzero(buckets == b).flatten()
            trees.append((cKDTree(means[idx].double().numpy()), idx, float(reach[idx].max())))

        @torch.no_grad()
        def query(x: Tensor) -> tuple[Tensor, Tensor]:
            pts, gs = [], []
            for tree, idx, r in trees:
                near = tree.query_ball_point(x.double().numpy(), r)
                counts = torch.tensor([len(n) for n in near])
                if counts.sum():
                    pts.append(torch.repeat_interleave(torch.arange(len(x)), counts))
                    gs.append(idx[torch.from_numpy(np.concatenate([n for n in near if n]).astype(np.int64))])
            sigma, rgb = torch.zeros(len(x)), torch.zeros(len(x), 3)
            if pts:
                p, g = torch.cat(pts), torch.cat(gs)
                d = x[p] - means[g]
                w = peak[g] * torch.exp(-0.5 * torch.einsum("ni,nij,nj->n", d, inv[g], d))
                sigma.index_add_(0, p, w)
                rgb.index_add_(0, p, w[:, None] * self.colors[g])
            return rgb / sigma.clamp_min(1e-12)[:, None], sigma

        return query

    @torch.no_grad()
    def render(self, cams: Cameras) -> Tensor:
        """Images [V, H, W, 3] (float32, white background) from ``cams``."""
        means, cov = self._world()
        rows, cols, depths = project(cams, means)
        images = []
        for i in range(len(cams)):
            world_to_cam = cams.c2w[i, :, :3].T
            cam = means @ world_to_cam.T - cams.c2w[i, :, 3] @ world_to_cam.T
            images.append(self._render_view(cam, cov, world_to_cam, rows[i], cols[i], depths[i], cams))
        return torch.stack(images)

    def _render_view(self, cam, cov, world_to_cam, rows, cols, depths, cams) -> Tensor:
        size, f = cams.size, cams.focal
        keep = torch.nonzero(depths > NEAR).squeeze(1)
        d, px, py = depths[keep], cam[keep, 0], cam[keep, 1]
        jac = torch.zeros(len(keep), 2, 3)
        jac[:, 0, 0], jac[:, 0, 2] = f / d, f * px / d**2  # d(col) / d(camera coordinates)
        jac[:, 1, 1], jac[:, 1, 2] = -f / d, -f * py / d**2  # d(row) / d(camera coordinates)
        m = jac @ world_to_cam
        cov2 = m @ cov[keep] @ m.transpose(1, 2) + LOW_PASS * torch.eye(2)  # (col, row) covariance
        det = cov2[:, 0, 0] * cov2[:, 1, 1] - cov2[:, 0, 1] ** 2
        inv = torch.stack([cov2[:, 1, 1], -cov2[:, 0, 1], cov2[:, 0, 0]], -1) / det[:, None]  # a, b, c
        reach_c, reach_r = EXTENT * cov2[:, 0, 0].sqrt(), EXTENT * cov2[:, 1, 1].sqrt()
        r, c = rows[keep], cols[keep]
        r0 = (r - reach_r).ceil().clamp(0, size - 1).long()
        r1 = (r + reach_r).floor().clamp(-1, size - 1).long()
        c0 = (c - reach_c).ceil().clamp(0, size - 1).long()
        c1 = (c + reach_c).floor().clamp(-1, size - 1).long()
        height, width = (r1 - r0 + 1).clamp_min(0), (c1 - c0 + 1).clamp_min(0)
        counts = height * width
        order = torch.argsort(d, stable=True)  # front to back
        rank = torch.empty_like(order)
        rank[order] = torch.arange(len(order))
        pix_all, key_all, weight_all, color_all = [], [], [], []
        ends = counts.cumsum(0)
        first = 0
        while first < len(counts):
            done = int(ends[first - 1]) if first else 0
            last = max(first + 1, int(torch.searchsorted(ends, done + MAX_PAIRS, right=True)))
            g = torch.repeat_interleave(torch.arange(first, last), counts[first:last])
            local = torch.arange(len(g)) - (ends[g] - counts[g] - done)
            pr, pc = r0[g] + local // width[g], c0[g] + local % width[g]
            dc, dr = pc - c[g], pr - r[g]
            q = inv[g, 0] * dc * dc + 2 * inv[g, 1] * dc * dr + inv[g, 2] * dr * dr
            alpha = (self.opacities[keep[g]] * torch.exp(-0.5 * q)).clamp_max(MAX_ALPHA)
            ok = alpha >= MIN_ALPHA
            pix_all.append((pr * size + pc)[ok])
            key_all.append(rank[g][ok])
            weight_all.append(alpha[ok])
            color_all.append(self.colors[keep[g[ok]]])
            first = last
        pix, key = torch.cat(pix_all), torch.cat(key_all)
        alpha, color = torch.cat(weight_all), torch.cat(color_all)
        sort = torch.argsort(pix * len(order) + key)  # by pixel, then front to back
        pix, alpha, color = pix[sort], alpha[sort], color[sort]
        log_keep = torch.log1p(-alpha.double())
        before = log_keep.cumsum(0) - log_keep  # sum over every earlier pair, all pixels
        starts = torch.ones_like(pix, dtype=torch.bool)
        starts[1:] = pix[1:] != pix[:-1]
        seg = starts.long().cumsum(0) - 1
        transmit = torch.exp(before - before[starts][seg]).float()
        weight = transmit * alpha
        img = torch.zeros(size * size, 3).index_add_(0, pix, weight[:, None] * color)
        covered = torch.zeros(size * size).index_add_(0, pix, weight)
        img += (1 - covered)[:, None] * BACKGROUND
        return img.reshape(size, size, 3)
