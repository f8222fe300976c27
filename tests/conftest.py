import gc

import jax
import jax.random as jr
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop JAX's compiled executables after each test module, so that one pytest process
    does not keep thousands of them. A mitigation: XLA's CPU compiler segfaulted twice in
    `backend_compile` late in full runs (never in a module run alone); the cause is unknown."""
    yield
    jax.clear_caches()
    gc.collect()


@pytest.fixture
def getkey():
    """A fresh, deterministic PRNG key on every call (lineax's test idiom)."""
    key = jr.key(5678)

    def _getkey():
        nonlocal key
        key, subkey = jr.split(key)
        return subkey

    return _getkey
