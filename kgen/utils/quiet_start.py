"""`import kgen.utils.quiet_start  # noqa: F401`, first in a script that uses TensorFlow: no C++ start-up lines.

Importing it runs `kgen.utils.quiet.quiet_tensorflow`: TensorFlow is imported
(and its CUDA probe made) with the process's stderr redirected, so the lines
it prints before its own log settings apply ("Could not find cuda drivers",
oneDNN notices) never reach the terminal. `KGEN_DEBUG=1` keeps them.
"""

from kgen.utils.quiet import quiet_tensorflow

quiet_tensorflow()
