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

    def moving_average(self, averages, variables, decay):
        """The EMA update as one `torch._foreach_lerp_` over every floating-point pair.

        Keras' per-variable assignments are three ops and an assignment per
        weight, each with Keras' Python overhead: hundreds per step for a
        UNet. lerp(average, variable, 1 - decay) is the same update.
        """
        floating, rest = [], []
        for a, v in zip(averages, variables):
            (floating if a.value.is_floating_point() else rest).append((a, v))
        with torch.no_grad():
            torch._foreach_lerp_([a.value for a, _ in floating], [v.value for _, v in floating], 1.0 - float(decay))
        super().moving_average([a for a, _ in rest], [v for _, v in rest], decay)
