"""Backend-independent part of every kgen trainer."""

from typing import Any, Callable, Sequence

import keras

from kgen.backend.optimizer_group import OptimizerGroup
from kgen.utils.types import Tensor


class BaseTrainer(keras.Model):
    """A `keras.Model` whose training step is a sequence of `Phase`s.

    Subclasses write their objective once, in `compute_phase_loss`, with
    `keras.ops`; the backend subclass (`kgen.backend.Trainer`) takes the
    gradients. Subclasses call `compile_phases` from their `compile`.
    """

    def compile_phases(self, phases: Sequence[Any], **kwargs: Any) -> None:
        self._phases = list(phases)
        for phase in self._phases:
            if not phase.optimizer.built:
                phase.optimizer.build(phase.variables())
        super().compile(
            optimizer=OptimizerGroup([p.optimizer for p in self._phases]),
            **kwargs,
        )

    @property
    def phases(self) -> list:
        phases = getattr(self, "_phases", None)
        if not phases:
            raise RuntimeError(
                f"{type(self).__name__} is not compiled: call compile() "
                "before fit()."
            )
        return phases

    def compute_phase_loss(self, phase, data):
        """Returns `(loss, logs)` for the phase named `phase` on a batch.

        `logs` maps names to scalar tensors reported for this step.
        """
        raise NotImplementedError

    def batch_random(self, sample: Callable[..., Tensor], shape: Sequence[int], **kwargs: Any) -> Tensor:
        """A random tensor with one entry per example: `sample(shape, seed=self.seed_generator, **kwargs)`.

        `sample` is a `keras.random` function and `shape[0]` the batch size.
        Every per-example draw of a training step goes through here: a
        backend that runs the step once per device on a slice of the batch
        (TensorFlow under `tf.distribute`) draws the global batch's values and
        keeps its slice, so a run's noise does not depend on its device count.
        """
        return sample(shape, seed=self.seed_generator, **kwargs)

    def after_step(self):
        """Runs once per training step, after every phase's update; returns logs to report.

        For updates that must see the new weights (an exponential moving
        average). Write it with `keras.ops` and variable assignments: each
        backend runs it in its step (JAX inside the stateless scope).
        """
        return {}

    def moving_average(self, averages: Sequence[keras.Variable], variables: Sequence[keras.Variable],
                       decay: float) -> None:
        """`average <- decay * average + (1 - decay) * variable` for each pair (an EMA of weights).

        Call it from `after_step`. Written with variable assignments here; the
        torch backend fuses the whole list into one kernel.
        """
        for average, variable in zip(averages, variables):
            average.assign(decay * average + (1.0 - decay) * variable)

    def warmed_up_average(self, average: keras.Model, network: keras.Model, decay: float,
                          counter: keras.Variable) -> Tensor:
        """One EMA step of `average` towards `network` with the warmed-up decay `min(decay, (1 + n) / (10 + n))`.

        `n` is `counter` (the steps averaged so far), incremented here; the
        early steps weigh the fresh weights more, so the average does not
        keep its random start. Returns the decay used (for the logs).
        """
        n = counter
        used = keras.ops.minimum(decay, (1.0 + n) / (10.0 + n))
        self.moving_average(average.weights, network.weights, used)
        counter.assign_add(1.0)
        return used

    # Constructor arguments that are Keras models; get_config nests them.
    model_args = ()

    def config_with_models(self, **fields: Any) -> dict:
        """`get_config` body: the name, `fields`, and each of `model_args` serialized."""
        config = {"name": self.name, **fields}
        for key in self.model_args:
            config[key] = keras.saving.serialize_keras_object(getattr(self, key))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in cls.model_args:
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    # Random state: Keras saves a model's variables but not its SeedGenerators'
    # state, so a resumed run would replay the noise, timesteps and label
    # drops of its first steps. The states travel as extra entries of the
    # trainer's own variables (checkpoints without them still load).
    _SEED_KEY = "seed_generator_state_"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        for i, generator in enumerate(getattr(self, "_seed_generators", [])):
            store[f"{self._SEED_KEY}{i}"] = keras.ops.convert_to_numpy(generator.state)

    def load_own_variables(self, store):
        own = {key: store[key] for key in store.keys() if not key.startswith(self._SEED_KEY)}
        super().load_own_variables(own)
        for i, generator in enumerate(getattr(self, "_seed_generators", [])):
            key = f"{self._SEED_KEY}{i}"
            if key in store.keys():
                generator.state.assign(store[key])

    def get_compile_config(self):
        # Optimizers are rebuilt by the recipe, which knows the phases;
        # `.keras` files still carry their state (see `OptimizerGroup`).
        return None
