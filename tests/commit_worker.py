"""A tiny DCGAN run on one run folder, for the kill-at-every-commit-point tests (tests/test_run_folder.py).

    python tests/commit_worker.py RUN_DIR   # trains to 3 epochs of 4 steps, committing at every epoch end

Prints one JSON line: the optimizers' iterations, the recorded steps and the weights' checksum.
`KGEN_FAULT_AT=<point>:<n>` (kgen.runs.run_folder) SIGKILLs it inside its n-th commit.
"""

import json
import sys

import keras
import numpy as np
import tensorflow as tf

from kgen.runs import RunRecorder, fit_resumable, optimizers
from tests.test_dcgan import make_gan, toy_real


def main(run_dir):
    keras.utils.set_random_seed(0)
    gan = make_gan()
    data = tf.data.Dataset.from_tensor_slices(toy_real(64)).shuffle(64, seed=0).batch(16, drop_remainder=True)
    recorder = RunRecorder(run_dir, batch_size=16, checkpoint_every=None)
    fit_resumable(gan, data, recorder, 3, "commit worker")
    iterations = sorted({int(keras.ops.convert_to_numpy(o.iterations)) for o in optimizers(gan)
                         if not hasattr(o, "optimizers")})
    weights = [np.asarray(keras.ops.convert_to_numpy(w)) for w in gan.weights]
    print(json.dumps({"iterations": iterations, "steps": [r["step"] for r in recorder.step_rows],
                      "weights": [float(np.abs(w).sum()) for w in weights]}))


if __name__ == "__main__":
    main(sys.argv[1])
