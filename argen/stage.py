"""What every stage script shares: logging set-up, params loading and clear failure messages.

A stage script is ``run_stage(main)`` around a ``main(params)`` that wires params and paths to the package.
Expected failures (bad params, a dataset that is not where params.yaml says, an unusable input file, a
missing model or binary) end the process with one readable message and exit code 1, not a traceback: any
:class:`~argen.errors.UserError`, and the few other errors in :data:`USER_ERRORS`.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import logging
import os
import signal
import sys
from pathlib import Path
from collections.abc import Callable

from argen import __version__
from argen.errors import UserError
from argen.face import FaceModelError
from argen.params import Params, ParamsError, load_params

#: Errors a user can fix from the message alone: the project's own, params, face models, and missing model
#: folders and weights (FileNotFoundError from the libraries that load them).
USER_ERRORS: tuple[type[Exception], ...] = (UserError, ParamsError, FaceModelError, FileNotFoundError)


def provenance(stage: str, params: Params, *sections: str, **extra: object) -> dict[str, str]:
    """Parquet footer metadata saying what produced an output: stage, package version, params used."""
    used = {name: getattr(params, name).model_dump(mode="json") for name in sections}
    record = {"stage": stage, "argen_version": __version__, "seed": str(params.seed), "params": json.dumps(used)}
    record.update({k: str(v) for k, v in extra.items()})
    return record


#: torch's intra-op threads (and numpy's BLAS threads) in every stage. The thread count changes float results (the motion model's
#: weights differ between 1 and 2 threads, its loss in the 8th digit), and torch's default is the machine's core
#: count, so it is fixed: the same outputs on a 2-core laptop and a 64-core server. ``ARGEN_TORCH_THREADS``
#: overrides it (faster on many cores, other bytes than the committed ``dvc.lock``).
DEFAULT_TORCH_THREADS = 2


def torch_threads() -> int:
    """The intra-op thread count for stages: ``ARGEN_TORCH_THREADS`` or :data:`DEFAULT_TORCH_THREADS`."""
    value = os.environ.get("ARGEN_TORCH_THREADS", "").strip()
    if not value:
        return DEFAULT_TORCH_THREADS
    if not value.isdigit() or int(value) < 1:
        raise UserError(f"ARGEN_TORCH_THREADS={value!r}: expected a whole number of threads >= 1 "
                        f"(unset it for the default {DEFAULT_TORCH_THREADS})")
    return int(value)


class _TorchThreadsOnImport(importlib.abc.MetaPathFinder):
    """Sets torch's intra-op threads the moment torch is first imported (then removes itself).

    A stage that never uses torch (the demo, decompose, the tracks, the report) does not pay torch's import
    (1-2 s per process, dozens of processes per ``dvc repro``), and one that imports it late still runs on
    exactly ``threads`` threads: ``OMP_NUM_THREADS`` would cap the count at the machine's cores.
    """

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def find_spec(self, name: str, path=None, target=None):
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        exec_module = spec.loader.exec_module

        def exec_then_limit(module) -> None:
            exec_module(module)
            module.set_num_threads(self.threads)

        spec.loader.exec_module = exec_then_limit
        return spec


def limit_torch_threads(threads: int) -> None:
    """torch's intra-op threads = ``threads``: now if torch is imported, else as soon as it is."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    elif not any(isinstance(finder, _TorchThreadsOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _TorchThreadsOnImport(threads))


def _terminated(signum: int, frame) -> None:
    """SIGTERM (a killed ``dvc repro``, a queue cancelled) ends the stage like an error: exit code 143 after
    the ``finally`` blocks ran, so staged outputs' temporary folders are removed, not left beside the outputs."""
    raise SystemExit(128 + signum)


def run_stage(main: Callable[[Params], None], params_path: str = "params.yaml") -> None:
    """Configure logging, validate params.yaml, run ``main`` and turn user errors into a clean exit."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    log = logging.getLogger("argen.stage")
    signal.signal(signal.SIGTERM, _terminated)
    try:
        from threadpoolctl import threadpool_limits

        threads = torch_threads()
        limit_torch_threads(threads)
        with threadpool_limits(limits=threads):  # numpy's BLAS (OpenBLAS) and other OpenMP pools likewise
            main(load_params(params_path))
    except USER_ERRORS as err:
        log.error("%s", err)
        sys.exit(1)


def live_logger(directory: str | Path):
    """A DVCLive logger writing to ``directory`` (no dvc.yaml of its own, no experiment saved by it).

    Raises:
        UserError: the project is a git repository without any commit, where DVCLive cannot start.
    """
    from dvclive import Live
    from scmrepo.exceptions import SCMError

    try:
        return Live(str(directory), dvcyaml=False, save_dvc_exp=False, report=None)
    except SCMError as err:
        raise UserError(f"DVCLive could not start ({err}): make a first git commit in this project "
                        f"(git add -A && git commit), then run the stage again") from None


class CurveLogger:
    """Averages per-step training values over ``every`` steps and logs each average as one DVCLive point.

    Call it with (step, {name: value}); the last, possibly shorter, window is logged by :meth:`flush`.
    """

    def __init__(self, live, every: int = 20, prefix: str = "train/") -> None:
        self.live, self.every, self.prefix = live, every, prefix
        self.window: list[dict[str, float]] = []

    def __call__(self, step: int, values: dict[str, float]) -> None:
        self.window.append(values)
        if len(self.window) == self.every:
            self.flush()

    def flush(self) -> None:
        """Log the mean of the values collected since the last point."""
        if not self.window:
            return
        for name in self.window[0]:
            self.live.log_metric(self.prefix + name, sum(v[name] for v in self.window) / len(self.window))
        self.live.next_step()
        self.window.clear()
