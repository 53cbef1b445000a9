"""PyTorch gradient mechanics: `backward()` per phase."""

import torch

from kgen.backend.base import BaseTrainer


class TorchTrainer(BaseTrainer):
    def train_step(self, data):
        logs = {}
        for phase in self.phases:
            variables = phase.variables()
            self.zero_grad(set_to_none=True)
            loss, phase_logs = self.compute_phase_loss(phase.name, data)
            loss.backward()
            grads = [v.value.grad for v in variables]
            with torch.no_grad():
                phase.optimizer.apply(grads, variables)
            logs.update({k: v.detach() for k, v in phase_logs.items()})
        with torch.no_grad():
            logs.update(self.after_step())
        return logs
