"""TensorFlow gradient mechanics: one `GradientTape` per phase."""

import tensorflow as tf

from kgen.backend.base import BaseTrainer


class TensorFlowTrainer(BaseTrainer):
    def train_step(self, data):
        logs = {}
        for phase in self.phases:
            variables = phase.variables()
            with tf.GradientTape() as tape:
                loss, phase_logs = self.compute_phase_loss(phase.name, data)
            grads = tape.gradient(loss, variables)
            phase.optimizer.apply(grads, variables)
            logs.update(phase_logs)
        logs.update(self.after_step())
        return logs
