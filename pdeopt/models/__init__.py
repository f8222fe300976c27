"""pdeopt.models: neural networks with single-sample `__call__`, batched by `jax.vmap`."""

from ._autodiff_basis import AutodiffBasis as AutodiffBasis, autodiff_basis as autodiff_basis
from ._deeponet import DeepONet as DeepONet
from ._fno import FNO as FNO, SpectralConv as SpectralConv
from ._mlp import (
    MLP as MLP,
    AbstractMLP as AbstractMLP,
    FourierFeatures as FourierFeatures,
    ModifiedMLP as ModifiedMLP,
)
from ._utils import parameter_count as parameter_count
