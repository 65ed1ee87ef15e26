import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its threads: no busy-waiting

import pytest  # noqa: E402
import torch  # noqa: E402

from nerfspace.zoo import FitConfig  # noqa: E402

torch.set_num_threads(2)

# the smallest fit that still exercises every code path
TINY_FIT = FitConfig(
    steps=24,
    rays_per_step=96,
    image_size=12,
    train_views=3,
    test_views=2,
    samples_per_diagonal=32,
    occ_res=8,
    occ_every=8,
    batch=4,
    supersample=1,
)


@pytest.fixture
def tiny_fit() -> FitConfig:
    return TINY_FIT
