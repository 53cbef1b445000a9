"""Several optimizers presented to Keras as one."""

from typing import Any, Sequence

import keras


class OptimizerGroup(keras.optimizers.Optimizer):
    """Exposes the state of several optimizers as one optimizer's variables.

    Keras' JAX trainer threads only `model.optimizer.variables` through the
    jitted training step, and checkpoints save `model.optimizer`. Setting a
    group as the model's optimizer makes every phase's optimizer state travel
    through `fit()` and into `.keras` files on every backend. The group never
    applies gradients itself: each phase calls its own optimizer.

    Args:
        optimizers: list of built `keras.optimizers.Optimizer`.
    """

    def __init__(self, optimizers, name="optimizer_group", **kwargs):
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        self.optimizers = list(optimizers)
        self.built = True

    @property
    def variables(self) -> list:
        return [v for opt in self.optimizers for v in opt.variables]

    @property
    def iterations(self) -> keras.Variable:
        # One training step advances every optimizer once; report the last.
        return self.optimizers[-1].iterations

    def build(self, variables):
        self.built = True

    def split(self, values: Sequence[Any]) -> list:
        """Splits a flat list of values (in `variables` order) per optimizer."""
        out, start = [], 0
        for opt in self.optimizers:
            n = len(opt.variables)
            out.append(list(values[start : start + n]))
            start += n
        return out

    def get_config(self):
        config = super().get_config()
        config["optimizers"] = [
            keras.optimizers.serialize(opt) for opt in self.optimizers
        ]
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        optimizers = [
            keras.optimizers.deserialize(c, custom_objects=custom_objects)
            for c in config.pop("optimizers")
        ]
        config.pop("learning_rate", None)
        return cls(optimizers, name=config.get("name", "optimizer_group"))
