"""PyTorch gradient mechanics: `backward()` per phase.

Launched on several processes (`kgen.backend.processes`), each process runs
the step on its slice of the global batch; the gradients and the logged
values are averaged over the processes with `torch.distributed.all_reduce`
(equal slices: the global batch's mean), and per-example random draws are
made for the global batch and sliced, as under TensorFlow's replicas.
"""

from typing import Any, Callable, Sequence

import keras
import torch
import torch.distributed as dist

from kgen.backend.base import BaseTrainer
from kgen.backend.processes import current_launch
from kgen.utils.types import Tensor


def _processes():
    """`(rank, world size)` of the torch process group this run trains in; (0, 1) alone."""
    launch = current_launch()
    return (launch.index, launch.count) if launch.several else (0, 1)


def _average(tensors, world):
    """Averages the tensors over the processes in place, as one flat all-reduce."""
    flat = torch.cat([t.reshape(-1).float() for t in tensors])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


class TorchTrainer(BaseTrainer):
    def train_step(self, data):
        _, world = _processes()
        logs = {}
        for phase in self.phases:
            variables = phase.variables()
            self.zero_grad(set_to_none=True)
            loss, phase_logs = self.compute_phase_loss(phase.name, data)
            loss.backward()
            grads = [v.value.grad for v in variables]
            if world > 1:
                with torch.no_grad():
                    _average([g for g in grads if g is not None], world)
            with torch.no_grad():
                phase.optimizer.apply(grads, variables)
            logs.update({k: v.detach() for k, v in phase_logs.items()})
        with torch.no_grad():
            logs.update(self.after_step())
            if world > 1 and logs:
                values = [torch.as_tensor(v, dtype=torch.float32).clone() for v in logs.values()]
                _average(values, world)
                logs = dict(zip(logs, values))
        return logs

    def batch_random(self, sample: Callable[..., Tensor], shape: Sequence[int], **kwargs: Any) -> Tensor:
        rank, world = _processes()
        if world == 1:
            return super().batch_random(sample, shape, **kwargs)
        local = int(shape[0])
        values = sample((local * world, *shape[1:]), seed=self.seed_generator, **kwargs)
        return values[rank * local:(rank + 1) * local]

    def moving_average(self, averages: Sequence[keras.Variable], variables: Sequence[keras.Variable],
                       decay: float) -> None:
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
