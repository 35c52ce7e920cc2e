"""Where an experiment's batch tasks run: in this process, or on a Ray cluster.

Every experiment is a plan of batch tasks (:mod:`adv2lib.tasks`). The driver (the process
that called ``run_main`` etc.) decides which batches are missing from the results store,
hands them to an engine, and writes each result to the store as it arrives; it alone
touches the store, so workers need the code and the weights but no shared filesystem.

* :class:`SerialEngine` (default): the tasks run one after the other in the driver, with
  the driver's models; the first error stops the run (the batches already finished stay
  stored).
* :class:`RayEngine`: one Ray task per batch (`Ray Core tasks
  <https://docs.ray.io/en/latest/ray-core/tasks.html>`_). A worker builds the victim and
  interpreters once per process from the task's :class:`~adv2lib.tasks.WorkerSpec`. A task
  asks for ``num_gpus`` (1 when the cluster has GPUs, a fraction if you like) and, on a GPU,
  runs in a fresh process (``max_calls=1``: Ray's default for GPU tasks, set explicitly, as
  GPU memory of reused workers is not released, ray-project/ray#29624). A worker that dies
  (killed, out of host memory, node lost) is retried by Ray (``max_retries``); a task that
  raises is not retried: it is reported with its run key and batch while every other batch
  is stored (:class:`BatchesFailed`), and a rerun computes only what is missing. The driver
  never runs a model in Ray mode, so CUDA is never initialised there.

:func:`resolve_engine` turns ``None`` / ``"serial"`` / ``"ray"`` / an engine into an engine
(``None`` reads ``ADV2_ENGINE``, default serial). Ray is an optional dependency
(``pip install adv2lib[distributed]``); nothing here imports it until a Ray engine runs.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass, replace
from typing import Callable

from .errors import Adv2Error, ConfigError, one_line

__all__ = ["Call", "Shared", "SerialEngine", "RayEngine", "BatchesFailed", "resolve_engine", "ENGINES"]

ENGINES = ("serial", "ray")


@dataclass(frozen=True)
class Call:
    """One task: ``fn(ctx, **inputs)``. ``label`` names it in errors (run key and batch);
    ``expected``: the fingerprints a worker's models must have (victim and interpreters, as in
    the run keys), checked where the task runs."""

    fn: Callable
    inputs: dict
    label: str = ""
    expected: dict | None = None


class Shared:
    """An input that many tasks of a stage share (e.g. random_class's pool of target images):
    the Ray engine puts it in the object store once instead of once per task."""

    def __init__(self, value):
        self.value = value


def _unwrap(inputs: dict) -> dict:
    return {k: v.value if isinstance(v, Shared) else v for k, v in inputs.items()}


class BatchesFailed(Adv2Error, RuntimeError):
    """Some batch tasks raised; ``failures`` lists ``(label, message)``. Every other batch of the
    stage was stored, so a rerun computes only the failed ones."""

    def __init__(self, failures: list[tuple[str, str]]):
        self.failures = list(failures)
        shown = "; ".join(f"{label}: {message}" for label, message in self.failures[:3])
        more = f" (and {len(self.failures) - 3} more)" if len(self.failures) > 3 else ""
        super().__init__(f"{len(self.failures)} batch task(s) failed, the others were stored: {shown}{more}; "
                         "rerun the same command to compute only the missing batches")


class SerialEngine:
    """Run the tasks in this process, in order, with the driver's context."""

    name = "serial"

    def run(self, calls, worker, local, on_result) -> list:
        for call in calls:
            try:
                value = call.fn(local, **_unwrap(call.inputs))
            except Exception as err:
                if call.label:
                    err.add_note(f"while computing {call.label}")
                raise
            on_result(call, value)
        return []

    def __repr__(self) -> str:
        return "SerialEngine()"


# --------------------------------------------------------------------------- Ray

TEST_HOOK = "ADV2_TEST_TASK_HOOK"


def _test_hook(fn_name: str) -> None:
    """Test-only failure injection, in Ray tasks only (never in the serial path).

    ``ADV2_TEST_TASK_HOOK="<kill|raise>:<task function>:<marker file>"`` in a worker's
    environment: the first task of that function to create the marker file (atomically,
    ``O_EXCL``) kills its own process with SIGKILL, or raises."""
    spec = os.environ.get(TEST_HOOK)
    if not spec:
        return
    action, target, marker = spec.split(":", 2)
    if target != fn_name:
        return
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise RuntimeError(f"test hook: {fn_name} raised on purpose")


def _execute(fn, worker, expected, threads, **inputs):
    """A Ray task: build (or reuse) this process's context, run ``fn``, return CPU values."""
    import torch

    from .tasks import context

    torch.set_num_threads(max(1, int(threads)))
    _test_hook(getattr(fn, "__name__", ""))
    value = fn(context(worker, expected), **inputs)
    return _to_cpu(value)


def _to_cpu(value):
    import torch

    if torch.is_tensor(value):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_to_cpu(v) for v in value)
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    return value


def _import_ray():
    try:
        import ray
    except ImportError as err:
        raise ConfigError("the Ray engine needs Ray: pip install 'ray>=2.9' "
                          "(or pip install -e '.[distributed]'), or use --engine serial") from err
    return ray


@dataclass
class RayEngine:
    """Run each batch as a Ray task (see the module docstring).

    ``address``: the cluster to join (None: ``RAY_ADDRESS``, else a ``ray start`` cluster on
    this machine, else a new local one); ``num_gpus``: GPUs per task (None: 1 when the
    cluster has GPUs, else 0; 0.5 lets two tasks share a GPU); ``num_cpus``: CPUs per task,
    also the task's torch threads; ``max_retries``: reruns of a task whose worker died;
    ``reuse_workers``: keep a worker process (and its loaded models) for further tasks (None:
    yes on CPUs, no on GPUs); ``runtime_env``: Ray's runtime environment for the tasks
    (``working_dir``, ``env_vars``, ...); ``init_kwargs``: extra arguments for ``ray.init``
    when this engine starts or joins the cluster.
    """

    address: str | None = None
    num_gpus: float | None = None
    num_cpus: float = 1
    max_retries: int = 3
    reuse_workers: bool | None = None
    runtime_env: dict | None = None
    init_kwargs: dict | None = None
    wait_timeout: float = 60.0

    name = "ray"

    def __post_init__(self):
        if self.num_gpus is not None and self.num_gpus < 0:
            raise ConfigError(f"num_gpus must be >= 0, got {self.num_gpus} (--gpus-per-task)")
        if self.num_cpus <= 0:
            raise ConfigError(f"num_cpus must be > 0, got {self.num_cpus} (--cpus-per-task)")

    def connect(self):
        """Join (or start) the cluster; returns the ``ray`` module."""
        ray = _import_ray()
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")      # the book builds offline
            kwargs = {"address": self.address or os.environ.get("RAY_ADDRESS") or None,
                      "include_dashboard": False, "log_to_driver": True, **(self.init_kwargs or {})}
            if self.runtime_env:
                kwargs["runtime_env"] = self.runtime_env
            ray.init(**kwargs)
        return ray

    def gpus_per_task(self, ray, device: str) -> float:
        available = float(ray.cluster_resources().get("GPU", 0))
        if str(device) == "cpu":
            return 0.0
        if str(device).startswith("cuda:"):
            raise ConfigError(f"--device {device} names one GPU; with --engine ray use --device auto or cuda "
                              "and let Ray place the tasks (--gpus-per-task)")
        gpus = (1.0 if available else 0.0) if self.num_gpus is None else float(self.num_gpus)
        if gpus > available or (str(device) == "cuda" and not gpus):
            raise ConfigError(f"the tasks ask for {gpus:g} GPU(s) each but the Ray cluster has {available:g}: "
                              "use --device cpu, or join a cluster with GPUs (RAY_ADDRESS)")
        return gpus

    def run(self, calls, worker, local, on_result) -> list:
        ray = self.connect()
        gpus = self.gpus_per_task(ray, worker.device)
        worker = replace(worker, device="cuda" if gpus else "cpu")
        reuse = (not gpus) if self.reuse_workers is None else self.reuse_workers
        remote = ray.remote(num_cpus=self.num_cpus, num_gpus=gpus, max_calls=0 if reuse else 1,
                            max_retries=self.max_retries, retry_exceptions=False)(_execute)
        if self.runtime_env:
            remote = remote.options(runtime_env=self.runtime_env)
        shared, pending, failures = {}, {}, []
        for call in calls:
            inputs = {}
            for k, v in call.inputs.items():
                if isinstance(v, Shared):
                    if id(v) not in shared:
                        shared[id(v)] = ray.put(v.value)
                    v = shared[id(v)]
                inputs[k] = v
            pending[remote.remote(call.fn, worker, call.expected, self.num_cpus, **inputs)] = call
        while pending:
            # a timeout: ray.wait without one can return empty after days (ray-project/ray#44909)
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.wait_timeout)
            for ref in ready:
                call = pending.pop(ref)
                try:
                    value = ray.get(ref)
                except Exception as err:   # noqa: BLE001 - RayTaskError, WorkerCrashedError, ...
                    failures.append((call.label, _task_error(err)))
                    continue
                on_result(call, value)
                del value
        return failures

    def __repr__(self) -> str:
        where = self.address or os.environ.get("RAY_ADDRESS") or "local"
        return f"RayEngine(address={where!r}, num_gpus={self.num_gpus}, num_cpus={self.num_cpus})"


def _task_error(err: BaseException) -> str:
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException):
        return one_line(f"{type(cause).__name__}: {cause}")
    return one_line(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")


def resolve_engine(engine=None):
    """``None`` (``ADV2_ENGINE``, default ``serial``), ``"serial"``, ``"ray"`` or an engine instance."""
    if engine is None:
        engine = os.environ.get("ADV2_ENGINE") or "serial"
    if isinstance(engine, str):
        if engine == "serial":
            return SerialEngine()
        if engine == "ray":
            return RayEngine()
        raise ConfigError(f"unknown engine {engine!r}: choose serial or ray (--engine, ADV2_ENGINE)")
    if not callable(getattr(engine, "run", None)):
        raise ConfigError(f"engine must be 'serial', 'ray' or an engine object, got {engine!r}")
    return engine

