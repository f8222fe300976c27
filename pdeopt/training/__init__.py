"""Training: loss assembly, the jitted train step, the loop, checkpoints."""

from .._ordered import (
    apply_per_sample as apply_per_sample,
    at_least_two as at_least_two,
    repeat as repeat,
    sum_in_order as sum_in_order,
)
from ._checkpoint import (
    Checkpointer as Checkpointer,
    CheckpointMismatchError as CheckpointMismatchError,
    TrainState as TrainState,
    config_differences as config_differences,
    load_checkpoint as load_checkpoint,
    save_checkpoint as save_checkpoint,
    save_json as save_json,
)
from ._loop import (
    NonFiniteError as NonFiniteError,
    TrainingError as TrainingError,
    balanced_train_step as balanced_train_step,
    fit as fit,
    predict as predict,
    train_step as train_step,
)
from ._loss import PhysicsLoss as PhysicsLoss
from ._mesh import (
    DATA_AXIS as DATA_AXIS,
    ShardedLoss as ShardedLoss,
    check_mesh as check_mesh,
    initialize_distributed as initialize_distributed,
    is_main_process as is_main_process,
    make_mesh as make_mesh,
    on_each_device as on_each_device,
    replicate as replicate,
    shard_batch as shard_batch,
)
from ._optim import make_optimizer as make_optimizer
