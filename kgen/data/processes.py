"""Each training process's share of a stream of global batches."""

from __future__ import annotations

import tensorflow as tf

from kgen.utils.launch import Launch


def shard_for_processes(dataset: tf.data.Dataset, launch: Launch) -> tf.data.Dataset:
    """The stream of global batches `dataset` as the engine of `launch.backend` should receive it on this process.

    Every process builds the same stream (same files, same shuffling seed).
    torch: each global batch of B is cut into `launch.count` slices of
    B / count in order and this process keeps slice `launch.index`
    (`rebatch` then `shard`: the split Keras makes for JAX). tensorflow:
    the stream as is, with tf.distribute's data sharding (each worker keeps
    its replicas' slices of every global batch, whatever the files). jax:
    as is; Keras shards it (`DataParallel.distribute_dataset`).

    Raises:
        ValueError: the global batch is unknown or not a multiple of the process count.
    """
    if not launch.several:
        return dataset
    if launch.backend == "tensorflow":
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return dataset.with_options(options)
    if launch.backend != "torch":
        return dataset
    batch = tf.nest.flatten(dataset.element_spec)[0].shape[0]
    if batch is None or batch % launch.count:
        raise ValueError(f"the global batch ({batch}) must be a multiple of the number of processes "
                         f"({launch.count}), and fixed (drop_remainder).")
    return dataset.rebatch(batch // launch.count).shard(launch.count, launch.index)
