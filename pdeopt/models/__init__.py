"""pdeopt.models: neural networks with single-sample `__call__`, batched by `jax.vmap`."""

from ._fno import FNO as FNO, SpectralConv as SpectralConv
from ._utils import parameter_count as parameter_count
