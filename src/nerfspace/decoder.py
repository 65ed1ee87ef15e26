"""The embedding-conditioned implicit decoder (nf2vec style) used by the rendering loss L_R.

embedding ⊕ frequency-encoded xyz → MLP with an additive skip → RGB + density, the output
conventions of a NeRF field, so the same renderer draws it. The embedding's share of the first layer
is computed once per NeRF, not once per sample (an exact split of the concatenated input).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from nerfspace.fields import trunc_exp
from nerfspace.fields.encoding import frequency_encode, normalize


@dataclass(frozen=True)
class DecoderConfig:
    hidden: int = 128
    layers: int = 4
    n_freqs: int = 6

    def to_dict(self) -> dict:
        return asdict(self)


class ImplicitDecoder(nn.Module):
    """``decoder(z [K, D])`` → a packed field ``(x [M, 3], net [M]) → (rgb [M, 3], sigma [M])``, point
    m conditioned on embedding ``net[m]`` (the renderer's field protocol)."""

    def __init__(self, embed_dim: int, config: DecoderConfig = DecoderConfig()):
        super().__init__()
        h, enc = config.hidden, 3 * 2 * config.n_freqs
        self.config = config
        self.from_embedding = nn.Linear(embed_dim, h)
        self.from_position = nn.Linear(enc, h, bias=False)
        self.layers = nn.ModuleList(nn.Linear(h, h) for _ in range(config.layers - 1))
        self.skip = config.layers // 2  # the first layer's output is added back here
        self.out = nn.Linear(h, 4)

    def forward(self, z: torch.Tensor):
        cond = self.from_embedding(z)  # [K, H]

        def field(x: torch.Tensor, net: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            first = cond[net] + self.from_position(frequency_encode(normalize(x), self.config.n_freqs))
            h = torch.relu(first)
            for i, layer in enumerate(self.layers):
                h = torch.relu(layer(h) + (first if i + 1 == self.skip else 0))
            raw = self.out(h)
            return torch.sigmoid(raw[..., :3]), trunc_exp(raw[..., 3] - 1.0)

        return field
