"""Data: HDF5 storage in PDEBench layouts, resumable generation, datasets, and metrics."""

from ._generate import (
    Dataset as Dataset,
    SampleGenerator as SampleGenerator,
    Samples as Samples,
    generate_file as generate_file,
    lock_path as lock_path,
    parts_dir as parts_dir,
    read_generated as read_generated,
    read_or_generate as read_or_generate,
    train_test_split as train_test_split,
)
from ._hdf5 import (
    DataFile as DataFile,
    DataFileError as DataFileError,
    file_digest as file_digest,
    read_data_file as read_data_file,
    read_seed_file as read_seed_file,
    write_file_digest as write_file_digest,
    write_seed_file as write_seed_file,
    write_single_file as write_single_file,
)
from ._metrics import (
    METRIC_NAMES as METRIC_NAMES,
    PDEBENCH_268BA5E as PDEBENCH_268BA5E,
    PDEBENCH_LEGACY as PDEBENCH_LEGACY,
    MetricConvention as MetricConvention,
    batch_metrics as batch_metrics,
    pdebench_metrics as pdebench_metrics,
    relative_l2 as relative_l2,
)
