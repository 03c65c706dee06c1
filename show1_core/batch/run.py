"""``run_batch``: a prompt file to a folder of videos on Ray, checked before any work, resumable, never losing a
finished video."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence, TextIO

from ..errors import GenerationCancelled, InputError, InvalidSettingsError
from ..outputs import check_destinations
from ..validation.cascade import validate_cascade
from ..validation.ranges import raise_problems, seed_problems
from .items import BatchItem, batch_items
from .manifest import DONE, FAILED, MANIFEST_NAME, WRITING, Manifest, ManifestRow
from .options import MODES, POOL_OF_PART, POOLS, BatchOptions, lora_digests, output_settings, settings_hash
from .prompts import PromptEntry, read_prompts
from .resume import Progress, sort_items
from .settings_dict import settings_to_dict

if TYPE_CHECKING:
    from ..cascade import Show1Cascade


@dataclass
class BatchResult:
    """What a batch run did, and the manifest's last row of every item of the batch."""

    rows: list[ManifestRow]
    """The last manifest row of each item, in batch order (items never reached have none)."""
    skipped: int = 0
    """Items finished by an earlier run."""
    done: int = 0
    failed: int = 0
    missing: int = 0
    """Items whose worker was lost for good (run the batch again to make them)."""
    seconds: float = 0.0
    """Wall time of this run's work."""
    workers: dict[str, int] = field(default_factory=dict)
    """Workers per pool (``cascade`` for ``--by video``)."""
    pool_seconds: dict[str, float] = field(default_factory=dict)
    """Worker time each stage pool spent on this run's finished items."""

    def summary(self) -> str:
        """Counts, overall throughput and each stage pool's throughput, one per line."""
        made = self.done + self.failed
        rate = 60 * self.done / self.seconds if self.seconds else 0.0
        lines = [
            f"{self.done} made, {self.failed} failed, {self.missing} lost (run again to make them), {self.skipped} done before; "
            f"{made} in {self.seconds:.1f} s ({rate:.2f} videos/min)"
        ]
        whole_cascades = "cascade" in self.workers
        for pool, seconds in self.pool_seconds.items():
            per_video = seconds / self.done if self.done else 0.0
            if whole_cascades:  # every worker runs every stage: a stage has no throughput of its own
                lines.append(f"  {pool:<13} {per_video:7.2f} s/video")
                continue
            workers = self.workers.get(pool, 1)
            capacity = 60 * workers / per_video if per_video else 0.0
            lines.append(f"  {pool:<13} {per_video:7.2f} s/video on one worker, {workers} worker(s): up to {capacity:.1f} videos/min")
        return "\n".join(lines)


def _entries(prompts: Path | str | Sequence[PromptEntry]) -> tuple[list[PromptEntry], str]:
    if isinstance(prompts, (str, Path)):
        return read_prompts(prompts), str(prompts)
    if not prompts:
        raise InputError("the batch has no prompts")
    return list(prompts), "prompt list"


def _check_settings(items: Sequence[BatchItem], options: BatchOptions, source: str) -> Show1Cascade:
    """Every distinct item setting against every model's limits (configs only); the driver's cascade is returned."""
    setup = options.setup
    cascade = setup.cascade()
    limits = cascade.limits(setup.stages)
    validate_cascade(options.settings, limits, setup.stages)  # the batch's own flags first, named as flags
    checked = set()
    for item in items:
        key = json.dumps(settings_to_dict(replace(item.settings, seed=0)), sort_keys=True)
        try:
            raise_problems(seed_problems(item.settings.seed))  # an entry's seed plus its sample can pass the largest
            if key not in checked:
                validate_cascade(item.settings, limits, setup.stages)
                checked.add(key)
        except InvalidSettingsError as err:
            raise InputError(f"{source}:{item.line}: {err}") from None
    return cascade


def _stage_shares(cascade: Show1Cascade, options: BatchOptions) -> dict[str, float]:
    """Each stage pool's share of the compute of one video at the batch's settings, planned on the meta device."""
    from ..memory import POLICY_SETTINGS, MemoryPolicy
    from ..plan.fitting import advisory
    from ..plan.planner import PlanModels, flops_per_part, roles_of_run

    setup = options.setup
    first_frame = cascade.uses_first_frame_model()
    folders = {role: getattr(cascade.checkpoints, role.value) for role in roles_of_run(setup.stages, first_frame)}
    policy = POLICY_SETTINGS[MemoryPolicy(setup.memory)]

    def plan() -> dict[str, int]:
        models = PlanModels.of_folders(folders, cascade.checkpoints.t5, cascade.dtype, setup.speed)
        return flops_per_part(models, options.settings, setup.stages, policy, first_frame)

    flops = advisory(plan) or {}
    shares = dict.fromkeys(POOLS, 0.0)
    for part, count in flops.items():
        shares[POOL_OF_PART[part]] += count
    return shares if any(shares.values()) else dict.fromkeys(POOLS, 1.0)


def prepare_batch(
    prompts: Path | str | Sequence[PromptEntry], out_dir: Path | str, options: BatchOptions = BatchOptions()
) -> tuple[list[BatchItem], dict[str, ManifestRow], Progress, Show1Cascade]:
    """Everything :func:`run_batch` checks before any work: the prompts, each item's settings against the models,
    the output folder and the manifest. Returns the items, their manifest rows to be, what is left to do, and the
    driver's (unloaded) cascade."""
    if options.spread.by not in MODES:
        raise InputError(f"--by must be one of {', '.join(MODES)}, got {options.spread.by!r}")
    if isinstance(options.samples, bool) or not isinstance(options.samples, int) or options.samples < 1:
        raise InputError(f"--samples must be a whole number of at least 1, got {options.samples!r}")
    from .pipeline import check_pool_sizes

    check_pool_sizes(options.spread.pool_sizes)
    entries, source = _entries(prompts)
    items = batch_items(entries, options.settings, options.samples, source)
    cascade = _check_settings(items, options, source)
    folder = Path(out_dir)
    check_destinations([folder / MANIFEST_NAME], overwrite=True)  # the folder can be written
    folder.mkdir(parents=True, exist_ok=True)
    digests = lora_digests(options.setup)
    settings = {item.name: output_settings(item, options.setup, digests) for item in items}
    hashes = {name: settings_hash(value) for name, value in settings.items()}
    progress = sort_items(items, hashes, settings, Manifest(folder).latest(), folder, options.overwrite)
    rows = {
        item.name: ManifestRow(
            item.name,
            DONE,
            item.prompt,
            item.line,
            item.sample_index,
            item.settings.seed,
            hashes[item.name],
            file=item.file_name,
            settings=settings[item.name],
        )  # fmt: skip
        for item in items
    }
    return items, rows, progress, cascade


def _write_video(row: dict, item_row: ManifestRow, folder: Path, manifest: Manifest) -> ManifestRow:
    from safetensors.torch import load as load_tensors

    from ..video_io import write_frames

    seconds = json.loads(row["seconds"] or "{}")
    manifest.append(replace(item_row, status=WRITING))
    frames = load_tensors(row["tensors"])["frames"].numpy()
    write_frames(list(frames), folder / item_row.file, row["fps"], overwrite=True)
    return manifest.append(replace(item_row, seconds=round(sum(seconds.values()), 3), stage_seconds=seconds))


def run_batch(
    prompts: Path | str | Sequence[PromptEntry],
    out_dir: Path | str,
    options: BatchOptions = BatchOptions(),
    *,
    stream: TextIO | None = sys.stderr,
) -> BatchResult:
    """Make every video of a batch into ``out_dir`` on Ray (docs/BATCH.md), skipping those an earlier run finished.

    ``prompts`` is a prompt file (text, JSONL or VBench JSON) or a list of :class:`PromptEntry`. Everything is
    checked before any work (:func:`prepare_batch`). Each video is written atomically and recorded in
    ``out_dir/manifest.jsonl`` as it finishes; an item that fails is recorded with its error and the batch goes
    on. ``stream`` gets the progress bar and notices (``None``: silent). Ctrl-C stops the batch, keeping every
    finished video, and raises :class:`~show1_core.errors.GenerationCancelled`.
    """

    from .pipeline import connect, plan_workers, run_pipeline
    from .workers import item_row

    items, planned, progress, cascade = prepare_batch(prompts, out_dir, options)
    folder, manifest = Path(out_dir), Manifest(Path(out_dir))
    say = (lambda text: print(text, file=stream, flush=True)) if stream is not None else (lambda text: None)
    say(
        f"{len(items)} videos: {len(progress.finished)} done before, {len(progress.todo)} to make"
        + (f" ({progress.retried} failed before)" if progress.retried else "")
        + (f" ({progress.replaced} made again with these settings)" if progress.replaced else "")
    )
    result = BatchResult(rows=[], skipped=len(progress.finished))
    if progress.todo:
        shares = _stage_shares(cascade, options) if options.spread.by == "stage" else {}
        started_ray = connect(options.spread.ray_address)
        began = time.perf_counter()
        try:
            result.workers, shape = plan_workers(options.spread, shares, options.setup.stages)
            say(f"workers: {', '.join(f'{pool} {n}' for pool, n in result.workers.items())} ({shape.resource} {shape.amount:g} each)")
            rows = [item_row(item.name, item.prompt, settings_to_dict(item.settings)) for item in progress.todo]
            _collect(run_pipeline(rows, options.setup, result.workers, shape), planned, folder, manifest, result, stream)
        except KeyboardInterrupt:
            raise GenerationCancelled(
                f"batch stopped: {result.done} video(s) made this run are kept in {folder}; run the same command to make the rest"
            ) from None
        finally:
            result.seconds = time.perf_counter() - began
            if started_ray:
                import ray

                ray.shutdown()
        result.missing = len(progress.todo) - result.done - result.failed
    latest = manifest.latest()
    result.rows = [latest[item.name] for item in items if item.name in latest]
    return result


def _collect(
    finished, planned: Mapping[str, ManifestRow], folder: Path, manifest: Manifest, result: BatchResult, stream: TextIO | None
) -> None:
    """Write and record each finished row as it comes, moving one bar over the batch."""
    from tqdm.auto import tqdm

    todo = len(planned) - result.skipped
    with tqdm(total=todo, unit="video", desc="show1 batch", file=stream, disable=stream is None) as bar:
        for row in finished:
            item_row = planned[row["name"]]
            if row["error"]:
                manifest.append(replace(item_row, status=FAILED, file=None, error=row["error"]))
                result.failed += 1
            else:
                written = _write_video(row, item_row, folder, manifest)
                result.done += 1
                for pool, seconds in written.stage_seconds.items():
                    result.pool_seconds[pool] = result.pool_seconds.get(pool, 0.0) + seconds
            bar.update(1)
            bar.set_postfix(done=result.done, failed=result.failed)
