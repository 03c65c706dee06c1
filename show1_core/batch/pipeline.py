"""The batch on Ray: joining or starting a cluster, sizing the workers, and the Ray Data pipeline of each mode.

``--by video`` maps the items over one actor pool of :class:`~show1_core.batch.workers.CascadeWorker`;
``--by stage`` chains one pool of :class:`~show1_core.batch.workers.StagePoolWorker` per stage (its
size set by the stage's share of the compute), so each item's intermediate videos travel through
Ray's object store. Ray Data restarts a worker that dies and runs its item again; rows come back
as they finish, in no particular order.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from ..errors import InputError
from ..model_setup import ModelSetup
from .options import POOLS, Spread

RAY_INSTALL = 'show1 batch needs Ray: pip install "show1[ray]"'


def import_ray():
    """The ``ray`` module, or :class:`InputError` saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data comes with the "data" extra
    except ImportError as err:
        raise InputError(f"{RAY_INSTALL} ({err})") from None
    return ray


def connect(address: str | None) -> bool:
    """Join the Ray cluster at ``address``, or start one on this machine; returns whether this call started Ray
    (and so should stop it). A session the caller already opened is used as it is."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    except ConnectionError as err:
        raise InputError(f"cannot reach the Ray cluster at --ray-address {address}: {err}") from None
    return True


@dataclass(frozen=True)
class WorkerShape:
    """What one worker asks Ray for: ``amount`` of ``resource`` and ``cpus`` CPUs."""

    resource: str
    amount: float
    cpus: float

    def remote_args(self) -> dict[str, Any]:
        """The keyword arguments of Ray Data's ``map`` that reserve this."""
        if self.resource == "CPU":
            return {"num_cpus": self.amount}
        if self.resource == "GPU":
            return {"num_gpus": self.amount, "num_cpus": self.cpus}
        return {"resources": {self.resource: self.amount}, "num_cpus": self.cpus}


def worker_resource(spread: Spread, cluster: Mapping[str, float]) -> tuple[str, float]:
    """The resource workers are scheduled on and how much of it the cluster has."""
    resource = spread.worker_resource or ("GPU" if cluster.get("GPU", 0) > 0 else "CPU")
    available = cluster.get(resource, 0)
    if available <= 0:
        have = ", ".join(f"{name} {amount:g}" for name, amount in sorted(cluster.items()) if not name.startswith("node:"))
        raise InputError(f"the Ray cluster has no {resource} (--worker-resource); it has {have}")
    if spread.per_worker <= 0 or spread.per_worker > available:
        raise InputError(f"--per-worker must be more than 0 and at most the cluster's {available:g} {resource}, got {spread.per_worker:g}")
    return resource, available


def video_workers(spread: Spread, cluster: Mapping[str, float]) -> tuple[int, WorkerShape]:
    """``--by video``: how many cascade workers run, and what each asks for."""
    resource, available = worker_resource(spread, cluster)
    fit = int(available // spread.per_worker)
    workers = spread.workers or fit
    if workers < 1 or workers > fit:
        raise InputError(
            f"--workers {workers} x --per-worker {spread.per_worker:g} needs {workers * spread.per_worker:g} {resource}; "
            f"the cluster has {available:g}"
        )
    cpus = min(1.0, cluster.get("CPU", 1.0) / workers)
    return workers, WorkerShape(resource, spread.per_worker, cpus)


def pool_sizes(pools: Sequence[str], shares: Mapping[str, float], slots: int, given: Mapping[str, int]) -> dict[str, int]:
    """Workers per pool of ``pools``: ``given`` where named; the other pools get one each, then each further
    worker of ``slots`` goes to the pool that is then the bottleneck (the largest share of the compute per
    worker), so that no stage holds the pipeline back more than it must."""
    check_pool_sizes(given)
    sizes = {pool: given.get(pool, 1) for pool in pools}
    free = [pool for pool in pools if pool not in given]
    for _ in range(slots - sum(sizes.values())):
        if not free:
            break
        bottleneck = max(free, key=lambda pool: shares.get(pool, 0.0) / sizes[pool])
        sizes[bottleneck] += 1
    return sizes


def check_pool_sizes(given: Mapping[str, int]) -> None:
    """Refuse pool names that do not exist and sizes below one."""
    unknown = sorted(set(given) - set(POOLS))
    if unknown or any(isinstance(size, bool) or not isinstance(size, int) or size < 1 for size in given.values()):
        raise InputError(f"--pool-sizes takes POOL=N (N at least 1) for the pools {', '.join(POOLS)}; got {dict(given)}")


def stage_workers(
    spread: Spread, cluster: Mapping[str, float], shares: Mapping[str, float], stages: int
) -> tuple[dict[str, int], WorkerShape]:
    """``--by stage``: workers per pool of the first ``stages`` stages and what each asks for. With fewer slots than
    workers, workers share a unit of the resource (each pool needs one worker alive for the pipeline to flow)."""
    resource, available = worker_resource(spread, cluster)
    slots = max(1, int(available // spread.per_worker))
    sizes = pool_sizes(POOLS[: stages + 1], shares, slots, spread.pool_sizes)
    workers = sum(sizes.values())
    amount = spread.per_worker if workers <= slots else 1 / math.ceil(workers / max(1, int(available)))
    cpus = min(1.0, cluster.get("CPU", 1.0) / workers)
    if resource == "CPU":
        amount = min(amount, cluster["CPU"] / workers)
    return sizes, WorkerShape(resource, amount, cpus)


def plan_workers(spread: Spread, shares: Mapping[str, float], stages: int) -> tuple[dict[str, int], WorkerShape]:
    """The workers of ``spread.by`` on the connected cluster: ``{"cascade": n}`` for ``--by video``, else the size of
    each stage pool; and what each worker asks for."""
    ray = import_ray()
    cluster = ray.cluster_resources()
    if spread.by == "video":
        workers, shape = video_workers(spread, cluster)
        return {"cascade": workers}, shape
    return stage_workers(spread, cluster, shares, stages)


def run_pipeline(rows: Sequence[dict], setup: ModelSetup, sizes: Mapping[str, int], shape: WorkerShape) -> Iterator[dict]:
    """Every row of ``rows`` run through the workers :func:`plan_workers` chose, yielded as each finishes (a row
    whose worker was lost for good does not come back). Ray must be connected (:func:`connect`)."""
    ray = import_ray()
    from ray.data import ActorPoolStrategy, DataContext

    from .workers import CascadeWorker, StagePoolWorker

    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.max_errored_blocks = len(rows)  # a lost item is reported missing, never stops the batch
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its notices (progress bars off, plans) would break our bar
    dataset = ray.data.from_items(list(rows), override_num_blocks=len(rows))
    for pool, size in sizes.items():
        worker, arguments = (CascadeWorker, {"setup": setup}) if pool == "cascade" else (StagePoolWorker, {"pool": pool, "setup": setup})
        dataset = dataset.map(worker, fn_constructor_kwargs=arguments, compute=ActorPoolStrategy(size=size), **shape.remote_args())
    yield from dataset.iter_rows()
