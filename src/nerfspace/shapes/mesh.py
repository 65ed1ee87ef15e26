"""Triangle meshes as ground truth: a mesh in the canonical frame with its colours (a colour per face
corner, or a texture per face), posed and lit like `SDFObject`, rendered exactly on the CPU.

The renderer is a binned ray caster: each triangle's screen-space bounding box (one pixel of margin)
names the pixels whose rays are tested against it (Moller-Trumbore), and each pixel keeps its nearest
hit (ties: the lowest face index), so the result is exact and deterministic. Surfaces are shaded with
the face's normal turned towards the camera (`shapes.shading`): open and non-manifold meshes render as
what a camera would see of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from nerfspace.frames import Similarity
from nerfspace.render import BACKGROUND, Cameras, camera_rays, project
from nerfspace.shapes.sdf import LIGHT_DIR
from nerfspace.shapes.shading import lambert

PAD = 0.02  # padding of a mesh's bounds (scene units)
MAX_CANDIDATES = 1 << 22  # (pixel, face) pairs tested at once
NEAR = 1e-4  # a vertex closer to the camera plane than this makes its face's box the whole image
EDGE_EPS = 1e-6  # barycentric slack, so rays through a shared edge hit one of its faces


@dataclass(frozen=True, eq=False)
class MeshObject:
    """A triangle mesh: ``vertices`` [V, 3] (canonical frame), ``faces`` [F, 3] vertex indices; albedo
    ``corner_colors`` [F, 3, 3] for faces whose ``face_texture`` [F] is -1, else texture
    ``textures[face_texture]`` [H, W, 3] sampled at ``corner_uv`` [F, 3, 2] (u right, v up, wrapping).
    ``pose`` places it in the world (a capture's frame), ``light`` is the unit direction to the light."""

    vertices: Tensor
    faces: Tensor
    corner_colors: Tensor
    corner_uv: Tensor
    face_texture: Tensor
    textures: tuple[Tensor, ...] = ()
    pose: Similarity | None = field(default=None, repr=False)
    light: Tensor = field(default=LIGHT_DIR, repr=False)

    @property
    def world_vertices(self) -> Tensor:
        return self.vertices if self.pose is None else self.pose.apply(self.vertices)

    @property
    def bounds(self) -> Tensor:
        """[2, 3] padded world bounding box (low, high)."""
        v = self.world_vertices
        return torch.stack([v.amin(0) - PAD, v.amax(0) + PAD])

    def posed(self, pose: Similarity, light: Tensor | None = None) -> MeshObject:
        """This mesh moved by ``pose`` (after its own pose), lit from ``light`` (default: unchanged)."""
        return replace(
            self,
            pose=pose if self.pose is None else self.pose.then(pose),
            light=self.light if light is None else torch.nn.functional.normalize(light.float(), dim=0),
        )

    @torch.no_grad()
    def render(self, cams: Cameras) -> Tensor:
        """Images [V, H, W, 3] (float32, white background) from ``cams``."""
        origins, dirs = camera_rays(cams)
        verts = self.world_vertices
        tri = verts[self.faces]  # [F, 3, 3]
        rows, cols, depths = project(cams, verts)
        images = []
        for i in range(len(cams)):
            o, d = origins[i].reshape(-1, 3), dirs[i].reshape(-1, 3)
            boxes = (x[self.faces] for x in (rows[i], cols[i], depths[i]))
            pix, face, bary = _nearest_hits(tri, *boxes, o, d, cams.size)
            img = torch.full_like(o, BACKGROUND)
            normal = torch.nn.functional.normalize(
                torch.linalg.cross(tri[face, 1] - tri[face, 0], tri[face, 2] - tri[face, 0]), dim=-1
            )
            normal = torch.where(((normal * d[pix]).sum(-1) > 0)[:, None], -normal, normal)
            img[pix] = lambert(self._albedo(face, bary), normal, self.light)
            images.append(img.reshape(cams.size, cams.size, 3))
        return torch.stack(images)

    def _albedo(self, face: Tensor, bary: Tensor) -> Tensor:
        """Albedo [N, 3] at barycentric coordinates ``bary`` [N, 3] of faces ``face`` [N]."""
        albedo = (bary[..., None] * self.corner_colors[face]).sum(1)
        tex = self.face_texture[face]
        for t, image in enumerate(self.textures):
            sel = torch.nonzero(tex == t).squeeze(1)
            if sel.numel():
                uv = (bary[sel, :, None] * self.corner_uv[face[sel]]).sum(1)
                albedo[sel] = _sample(image, uv)
        return albedo


def _sample(image: Tensor, uv: Tensor) -> Tensor:
    """Bilinear, wrapping samples [N, 3] of ``image`` [H, W, 3] at texture coordinates ``uv`` [N, 2]
    (v = 0 is the image's bottom row)."""
    h, w, _ = image.shape
    x = uv[:, 0] * w - 0.5
    y = (1 - uv[:, 1]) * h - 0.5
    x0, y0 = x.floor(), y.floor()
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0, y0 = x0.long(), y0.long()

    def at(yy: Tensor, xx: Tensor) -> Tensor:
        return image[yy.remainder(h), xx.remainder(w)]

    top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
    bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
    return top * (1 - fy) + bottom * fy


def _pixel_boxes(rows: Tensor, cols: Tensor, depths: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per face (projected corners [F, 3]): first row and column of its pixel box, and the box's height
    and width (0 where the face is off screen)."""
    behind = (depths <= NEAR).any(1)
    lo_r, hi_r, lo_c, hi_c = rows.amin(1), rows.amax(1), cols.amin(1), cols.amax(1)
    off = (hi_r < -1) | (lo_r > size) | (hi_c < -1) | (lo_c > size)
    r0 = torch.where(behind, 0, (lo_r.floor() - 1).clamp(0, size - 1)).long()
    c0 = torch.where(behind, 0, (lo_c.floor() - 1).clamp(0, size - 1)).long()
    r1 = torch.where(behind, size - 1, (hi_r.ceil() + 1).clamp(0, size - 1)).long()
    c1 = torch.where(behind, size - 1, (hi_c.ceil() + 1).clamp(0, size - 1)).long()
    keep = behind | ~off
    return r0, c0, torch.where(keep, r1 - r0 + 1, 0), torch.where(keep, c1 - c0 + 1, 0)


def _nearest_hits(
    tri: Tensor, rows: Tensor, cols: Tensor, depths: Tensor, origins: Tensor, dirs: Tensor, size: int
) -> tuple[Tensor, Tensor, Tensor]:
    """The pixels [N] whose rays hit the mesh, the face each hits first [N] and the barycentric
    coordinates of the hit [N, 3]. ``tri`` [F, 3, 3]; ``rows``, ``cols``, ``depths`` [F, 3] its projected
    corners; ``origins``, ``dirs`` [size * size, 3] the pixels' rays."""
    r0, c0, height, width = _pixel_boxes(rows, cols, depths, size)
    counts = height * width
    ends = counts.cumsum(0)
    hits = []
    first = 0
    while first < len(counts):  # faces in chunks of about MAX_CANDIDATES (pixel, face) pairs
        done = int(ends[first - 1]) if first else 0
        last = max(first + 1, int(torch.searchsorted(ends, done + MAX_CANDIDATES, right=True)))
        idx = torch.arange(first, last)
        f = torch.repeat_interleave(idx, counts[first:last])
        local = torch.arange(len(f)) - (ends[f] - counts[f] - done)
        pix = (r0[f] + local // width[f]) * size + c0[f] + local % width[f]
        hits.append(_intersect(tri, f, pix, origins, dirs))
        first = last
    pix, f, t, bary = (torch.cat(x) for x in zip(*hits, strict=True))
    best = torch.full((size * size,), torch.inf).scatter_reduce(0, pix, t, "amin")
    near = t == best[pix]
    pix, f, bary = pix[near], f[near], bary[near]
    first_face = torch.full((size * size,), len(tri)).scatter_reduce(0, pix, f, "amin")
    win = f == first_face[pix]
    return pix[win], f[win], bary[win]


def _intersect(
    tri: Tensor, f: Tensor, pix: Tensor, origins: Tensor, dirs: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Moller-Trumbore for (face ``f``, pixel ``pix``) pairs: of the pairs that hit in front of the
    camera, the pixel, face, ray distance and barycentric coordinates."""
    a = tri[f, 0]
    e1, e2 = tri[f, 1] - a, tri[f, 2] - a
    d, s = dirs[pix], origins[pix] - a
    p = torch.linalg.cross(d, e2)
    det = (e1 * p).sum(-1)
    inv = 1.0 / torch.where(det.abs() > 1e-12, det, 1.0)
    u = (s * p).sum(-1) * inv
    q = torch.linalg.cross(s, e1)
    v = (d * q).sum(-1) * inv
    t = (e2 * q).sum(-1) * inv
    ok = (det.abs() > 1e-12) & (u >= -EDGE_EPS) & (v >= -EDGE_EPS) & (u + v <= 1 + EDGE_EPS) & (t > NEAR)
    bary = torch.stack([1 - u - v, u, v], -1).clamp(0, 1)
    return pix[ok], f[ok], t[ok], bary[ok]
