"""Data: HDF5 storage in PDEBench layouts, and metrics."""

from ._hdf5 import (
    DataFileError as DataFileError,
    read_seed_file as read_seed_file,
    write_seed_file as write_seed_file,
)
from ._metrics import relative_l2 as relative_l2
