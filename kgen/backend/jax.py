"""JAX gradient mechanics: `jax.value_and_grad` over a stateless phase loss.

Keras' JAX trainer passes the whole model state into the jitted step and
expects it back. Each phase runs the subclass's stateful-looking
`compute_phase_loss` inside a `keras.StatelessScope` that maps every variable
to its current value, differentiates with respect to the phase's variables
only, and applies the phase's optimizer with `stateless_apply` on its slice of
the `OptimizerGroup` state.
"""

import functools

import jax
import keras

from kgen.backend.base import BaseTrainer


class JAXTrainer(BaseTrainer):
    def train_step(self, state, data):
        trainable, non_trainable, optimizer_values, metrics_values = state
        trainable = list(trainable)
        non_trainable = list(non_trainable)
        optimizer_slices = self.optimizer.split(optimizer_values)
        position = {id(v): i for i, v in enumerate(self.trainable_variables)}
        logs = {}
        for k, phase in enumerate(self.phases):
            indices = [position[id(v)] for v in phase.variables()]
            loss_fn = functools.partial(
                self._phase_loss,
                indices=indices,
                trainable=trainable,
                non_trainable=non_trainable,
                name=phase.name,
                data=data,
            )
            grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
            (_, (phase_logs, non_trainable)), grads = grad_fn(
                [trainable[i] for i in indices]
            )
            new_values, optimizer_slices[k] = phase.optimizer.stateless_apply(
                optimizer_slices[k], grads, [trainable[i] for i in indices]
            )
            for i, value in zip(indices, new_values):
                trainable[i] = value
            logs.update(phase_logs)
        mapping = list(zip(self.trainable_variables, trainable))
        mapping += list(zip(self.non_trainable_variables, non_trainable))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logs.update(self.after_step())
        non_trainable = [old if scope.get_current_value(v) is None else scope.get_current_value(v)
                         for v, old in zip(self.non_trainable_variables, non_trainable)]
        optimizer_values = [v for s in optimizer_slices for v in s]
        return logs, (trainable, non_trainable, optimizer_values, metrics_values)

    def _phase_loss(
        self, phase_values, indices, trainable, non_trainable, name, data
    ):
        trainable = list(trainable)
        for i, value in zip(indices, phase_values):
            trainable[i] = value
        mapping = list(zip(self.trainable_variables, trainable))
        mapping += list(zip(self.non_trainable_variables, non_trainable))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            loss, logs = self.compute_phase_loss(name, data)
        updated = []
        for variable, old in zip(self.non_trainable_variables, non_trainable):
            new = scope.get_current_value(variable)
            updated.append(old if new is None else new)
        return loss, (logs, updated)
