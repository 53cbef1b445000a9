"""TensorFlow gradient mechanics: one `GradientTape` per phase.

Under `tf.distribute.MirroredStrategy` (`kgen.backend.distribution.use_devices`)
Keras runs `train_step` once per replica on its slice of the global batch and
the optimizer sums the replicas' gradients. Two things make that step equal to
one step on one device over the global batch: each replica's loss is weighted
by its share of the batch before the gradient, and every per-example random
draw is made for the global batch and sliced (`batch_random`), so the noise
does not depend on the number of devices. (Batch statistics are synchronised
by `kgen.models.BatchNormalization`.)

Under `MultiWorkerMirroredStrategy` (several processes, `kgen.backend.processes`)
the replicas are processes and the same step applies. Keras 3.15's `fit`
has two faults there (keras-team/keras#20585), worked around here: it
reduces a data batch across the workers before the first step (skipped: kgen's
trainers are built when compiled), and it reduces each logged scalar along an
axis 0 it does not have (the step returns them as vectors of one value).
"""

from typing import Any, Callable, Optional, Sequence

import tensorflow as tf

from kgen.backend.base import BaseTrainer
from kgen.utils.types import Tensor


def replica_context() -> Optional[tf.distribute.ReplicaContext]:
    """The `tf.distribute` replica context of the step being traced; None with a single replica."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def _replica_sizes(context, local):
    """Every replica's slice size (int32 vector), from this replica's `local` size."""
    mine = tf.one_hot(context.replica_id_in_sync_group, context.num_replicas_in_sync, dtype=tf.int32)
    return context.all_reduce(tf.distribute.ReduceOp.SUM, mine * tf.cast(local, tf.int32))


def multi_worker() -> bool:
    """Whether the default strategy spans several processes (MultiWorkerMirroredStrategy)."""
    strategy = tf.distribute.get_strategy()
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


class TensorFlowTrainer(BaseTrainer):
    def train_step(self, data):
        context = replica_context()
        share = None
        if context is not None:  # this replica's fraction of the global batch
            sizes = _replica_sizes(context, tf.shape(tf.nest.flatten(data)[0])[0])
            share = tf.cast(sizes[context.replica_id_in_sync_group], tf.float32) / tf.cast(
                tf.reduce_sum(sizes), tf.float32)
        logs = {}
        for phase in self.phases:
            variables = phase.variables()
            with tf.GradientTape() as tape:
                loss, phase_logs = self.compute_phase_loss(phase.name, data)
                if share is not None:
                    loss = tf.cast(loss, tf.float32) * share
            grads = tape.gradient(loss, variables)
            phase.optimizer.apply(grads, variables)
            logs.update(phase_logs)
        logs.update(self.after_step())
        if multi_worker():  # Keras takes the mean along axis 0 across the workers (see the module's docstring)
            logs = {k: tf.reshape(tf.cast(v, tf.float32), [1]) for k, v in logs.items()}
        return logs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if multi_worker() and getattr(self.optimizer, "built", False):
            return  # built by compile; Keras' own build reduces a data batch across workers (module docstring)
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def batch_random(self, sample: Callable[..., Tensor], shape: Sequence[int], **kwargs: Any) -> Tensor:
        context = replica_context()
        if context is None:
            return super().batch_random(sample, shape, **kwargs)
        sizes = _replica_sizes(context, shape[0])
        start = tf.reduce_sum(sizes[:context.replica_id_in_sync_group])
        values = sample((tf.reduce_sum(sizes), *shape[1:]), seed=self.seed_generator, **kwargs)
        return values[start:start + tf.cast(shape[0], tf.int32)]
