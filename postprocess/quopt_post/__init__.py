"""quopt_post: analysis and postprocessing of quopt run files (collect, correlate, fit, report).

See docs/postprocess.md. Command line: ``python -m quopt_post <command> ...``.
"""

import os as _os

# The fits call L-BFGS-B thousands of times on tiny problems; a multi-threaded BLAS makes each
# call ~100x slower (thread start-up and contention), so BLAS is single-threaded unless the user
# set these. Effective only when quopt_post is imported before numpy (as `python -m quopt_post` does).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_var, "1")

__version__ = "0.1.0"
