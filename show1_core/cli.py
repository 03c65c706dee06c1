"""The ``show1`` command: ``generate``, ``batch``, ``plan``, ``demo``, ``tiny-models``, ``download``, ``convert`` and ``train-motion``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

from .errors import GenerationCancelled, InvalidSettingsError, Show1Error
from .settings import STAGE_FIELDS

DEMO_NOTICE = (
    "show1 demo runs every stage on TINY RANDOM models: the result is coloured noise, not a picture.\n"
    'It proves the installation works end to end. For real videos run `show1 generate "your prompt"`,\n'
    "which downloads the released checkpoints (about 35 GB) on first use."
)
SKIPPED_FIELDS = {"fps", "window_batch", "vae_batch"}


def _speed_flags(parser: argparse.ArgumentParser) -> None:
    """How the stage models run; the defaults are today's numbers (docs/PERFORMANCE.md)."""
    from .settings import ATTENTION_BACKENDS, COMPILE_BACKENDS

    group = parser.add_argument_group("speed options (every stage model; only --fp8 and --cache change the results)")
    group.add_argument(
        "--attention",
        default="sdpa",
        choices=ATTENTION_BACKENDS,
        help="attention kernel: sdpa (PyTorch, default), or through diffusers' dispatcher: native (PyTorch), flash, sage, xformers",
    )
    group.add_argument("--compile", action="store_true", help="torch.compile each repeated UNet block (slower first step, faster after)")
    group.add_argument("--compile-backend", default="inductor", choices=COMPILE_BACKENDS, help="torch.compile backend (default inductor)")
    group.add_argument("--fp8", action="store_true", help="store UNet and T5 weights in fp8 e4m3fn, computing in --precision (less memory)")
    group.add_argument("--stream-blocks", action="store_true", help="keep UNets on the CPU, streaming one block at a time to the GPU")
    group.add_argument("--split-guidance", action="store_true", help="guidance as two passes of one video instead of a batch of two")
    _cache_flag(group)


def _cache_flag(parser) -> None:
    """``--cache``: step caching per stage model (docs/PERFORMANCE.md); off by default, changes the results when on."""
    parser.add_argument(
        "--cache",
        action="append",
        default=[],
        metavar="[STAGE=]METHOD[:NAME=VALUE,...]",
        help="reuse UNet work between steps (changes the results): METHOD step (threshold=, start=, end=), pab or taylorseer "
        "(interval=, start=, end=), or off; STAGE keyframes, interpolation, first_frame, pixel_sr or latent_sr (default: all); "
        "repeat for other stages, e.g. --cache step:threshold=0.05 --cache latent_sr=off",
    )


def _stage_flags(parser: argparse.ArgumentParser) -> None:
    """``--preset``, and one flag per stage setting, e.g. ``--keyframes-steps``, defaulting to the preset's value."""
    from .settings import PAPER_SETTINGS, PRESETS

    parser.add_argument(
        "--preset",
        default="paper",
        choices=list(PRESETS),
        help="every stage's defaults: paper (the paper's run_inference.py, default) or demo-app (the original demo app's "
        "step counts, 75/50/50/50/50: about half the compute); a stage flag overrides it",
    )
    for stage in STAGE_FIELDS:
        group = parser.add_argument_group(f"{stage.replace('_', ' ')} settings (paper defaults)")
        for f in dataclasses.fields(getattr(PAPER_SETTINGS, stage)):
            if f.name in SKIPPED_FIELDS:
                continue
            default = getattr(getattr(PAPER_SETTINGS, stage), f.name)
            flag = f"--{stage}-{f.name}".replace("_", "-")
            group.add_argument(flag, dest=f"{stage}__{f.name}", type=type(default), default=None, help=f"default {default}")


def _settings_from(args: argparse.Namespace):
    """The cascade settings of ``--preset`` with the stage flags given on top."""
    from .settings import PRESETS

    preset = PRESETS[args.preset]
    stages = {
        stage: dataclasses.replace(
            getattr(preset, stage),
            **{k.split("__", 1)[1]: v for k, v in vars(args).items() if k.startswith(f"{stage}__") and v is not None},
        )
        for stage in STAGE_FIELDS
    }
    return dataclasses.replace(
        preset, seed=args.seed, negative_prompt=args.negative_prompt, latent_negative_prompt=args.latent_negative_prompt, **stages
    )


VIDEO_NAMES = ("keyframes", "interpolated", "pixel_sr", "latent_sr")
"""The stage videos of a run, in cascade order (as :meth:`CascadeResult.videos` names them)."""


def _formats(args: argparse.Namespace) -> list[str]:
    """The output's own format first, then the extra ``--format`` ones, without repeats."""
    extra = [f.strip().lower() for f in args.format.split(",") if f.strip()] if args.format else []
    return list(dict.fromkeys([Path(args.output).suffix.lstrip(".").lower() or "mp4"] + extra))


def _output_plan(args: argparse.Namespace, stage_names: list[str]) -> list[tuple[str, Path]]:
    """(stage, file) for every file a run writes: the last stage in each format and as a contact sheet,
    then, with ``--save-intermediate``, every earlier stage as mp4."""
    output, final = Path(args.output), stage_names[-1]
    plan = [(final, output.with_suffix(f".{fmt}")) for fmt in _formats(args)]
    plan.append((final, output.with_name(f"{output.stem}_sheet.png")))
    if args.save_intermediate:
        plan += [(stage, output.with_name(f"{output.stem}_{stage}.mp4")) for stage in stage_names[:-1]]
    return plan


def _write_outputs(result, args: argparse.Namespace) -> list[Path]:
    from .video_io import write_contact_sheet, write_video

    videos = {stage: video.clamp(-1, 1) for stage, video in result.videos().items()}  # raw decodes overshoot; files clip anyway
    written = []
    for stage, path in _output_plan(args, list(videos)):
        if path.suffix == ".png":
            written.append(write_contact_sheet(videos[stage], path, overwrite=args.overwrite))
        else:
            written.append(write_video(videos[stage], path, result.fps[stage], overwrite=args.overwrite))
    return written


def _run_cascade(setup, args: argparse.Namespace, settings, prompt: str) -> list[Path]:
    import torch

    from .cascade import Phase
    from .console import RunDisplay

    cascade = setup.cascade()
    display = RunDisplay()
    try:
        with torch.inference_mode():
            result = cascade.run(
                prompt,
                settings,
                stages=setup.stages,
                clean_caption=setup.clean_caption,
                callback=display.step,
                on_stage=display.stage_done,
                on_phase=display.phase,
            )
        display.phase(Phase("write", "writing the outputs"))
        written = _write_outputs(result, args)
    finally:
        display.close()
    print(display.summary(), file=sys.stderr)
    return written


def _default_models_dir() -> Path:
    from .loading.hub import default_models_dir

    return default_models_dir()


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse an unusable output name, format or location (and existing files without --overwrite); remove,
    with a notice, the partial files of these outputs that killed runs left."""
    from .errors import InputError
    from .outputs import check_destinations, remove_leftovers
    from .video_io import FORMATS

    if not Path(args.output).name or args.output.endswith(("/", "\\")) or Path(args.output).is_dir():
        raise InputError(f"-o {args.output!r} is not a file name; give one such as {Path(args.output) / 'show1.mp4'}")
    unknown = [f for f in _formats(args) if f not in FORMATS]
    if unknown:
        raise InputError(f"unsupported output format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    paths = [path for _, path in _output_plan(args, list(VIDEO_NAMES[: args.stages]))]
    check_destinations(paths, args.overwrite)
    for leftover in (leftover for path in paths for leftover in remove_leftovers(path)):
        print(f"removed {leftover}, the partial file of a run that was killed while writing it", file=sys.stderr)


def _speed_from(args: argparse.Namespace):
    """The ``SpeedSettings`` the speed flags ask for."""
    from .settings import SpeedSettings
    from .speed.cache_spec import parse_cache_specs

    return SpeedSettings(
        attention=args.attention,
        compile=args.compile,
        compile_backend=args.compile_backend,
        fp8_weights=args.fp8,
        stream_blocks=args.stream_blocks,
        split_guidance=args.split_guidance,
        cache=parse_cache_specs(args.cache),
    )


def _check_before_running(args: argparse.Namespace) -> None:
    """Refuse bad output names and locations, formats, seeds, devices, speed options and stage settings before
    any model loads or downloads (the models' own limits are checked when the cascade starts)."""
    from .text import check_prompt

    _check_outputs(args)
    check_prompt(args.prompt)
    _check_model_flags(args)


def _check_model_flags(args: argparse.Namespace) -> None:
    """Refuse bad negative prompts, seeds, devices, speed options and stage settings (:func:`_model_flags`)."""
    from .memory import resolve_device
    from .motion_lora import check_speed_allows_loras
    from .speed import check_attention_backend
    from .text import check_prompt
    from .validation.ranges import raise_problems, settings_problems

    check_prompt(args.negative_prompt, "negative prompt (--negative-prompt)")
    check_prompt(args.latent_negative_prompt, "stage-4 negative prompt (--latent-negative-prompt)")
    device = resolve_device(args.device)
    speed = _speed_from(args)
    check_attention_backend(speed.attention, device)
    if args.motion_lora:
        check_speed_allows_loras(speed, "stage-1 or stage-2")
    raise_problems(settings_problems(_settings_from(args), args.stages, first_frame_model=not args.no_first_frame_model))


def _flag(setting: str) -> str:
    """The command-line flag of a setting (``pixel_sr.noise_level`` -> ``--pixel-sr-noise-level``), where it has one."""
    stage, _, name = setting.partition(".")
    if stage in STAGE_FIELDS and name and name not in SKIPPED_FIELDS:
        return f"--{stage}-{name}".replace("_", "-")
    return setting


def _setup_from(args: argparse.Namespace):
    """The :class:`~show1_core.model_setup.ModelSetup` the model flags ask for."""
    from .model_setup import ModelSetup

    return ModelSetup(
        stages=args.stages,
        first_frame_model=not args.no_first_frame_model,
        clean_caption=args.clean_caption,
        precision=args.precision,
        memory=args.memory,
        speed=_speed_from(args),
        motion_loras=tuple(args.motion_lora),
        models_dir=args.models_dir,
        offline=args.offline,
        device=args.device,
    )


def cmd_generate(args: argparse.Namespace) -> int:
    """Run the cascade on the released checkpoints (downloaded on first use)."""
    _check_before_running(args)
    for path in _run_cascade(_setup_from(args), args, _settings_from(args), args.prompt):
        print(f"wrote {path}")
    return 0


def demo_settings():
    """The paper's cascade shape (8 keyframes -> 29 frames, x4 pixel SR, latent SR) at a CPU-friendly size."""
    from .settings import (
        PAPER_SETTINGS,
        FirstFrameSettings,
        InterpolationSettings,
        KeyframeSettings,
        LatentSRSettings,
        PixelSRSettings,
    )

    return dataclasses.replace(
        PAPER_SETTINGS,
        keyframes=KeyframeSettings(width=32, height=16, steps=3),
        interpolation=InterpolationSettings(steps=3),
        first_frame=FirstFrameSettings(steps=3),
        pixel_sr=PixelSRSettings(steps=2),
        latent_sr=LatentSRSettings(width=192, height=96, steps=4, strength=0.75),
    )


def cmd_batch(args: argparse.Namespace) -> int:
    """Make a video per prompt and sample of a prompt file on Ray, skipping those an earlier run finished."""
    from .batch import BatchOptions, Spread, run_batch
    from .batch.pipeline import import_ray

    _check_model_flags(args)
    import_ray()  # before any work: say how to install it
    spread = Spread(args.by, args.workers, args.per_worker, args.worker_resource, args.pool_sizes, args.ray_address)
    options = BatchOptions(_settings_from(args), args.samples, _setup_from(args), spread, args.overwrite)
    result = run_batch(args.prompts, args.out, options)
    print(result.summary(), file=sys.stderr)
    return 1 if result.failed or result.missing else 0


def cmd_plan(args: argparse.Namespace) -> int:
    """Print the memory and compute plan of a run, and the fewest memory options that fit the accelerator."""
    from .footprint import GIB, device_memory_bytes
    from .loading.weights import parse_dtype
    from .memory import MemoryPolicy, resolve_device
    from .plan.fitting import RunConfig, fewest_options_that_fit, plan_config, released_models
    from .plan.report import physical_limit, plan_table
    from .validation.ranges import raise_problems, settings_problems

    settings = _settings_from(args)
    raise_problems(settings_problems(settings, args.stages, first_frame_model=not args.no_first_frame_model))
    config = RunConfig(MemoryPolicy(args.memory), _speed_from(args))
    dtype = parse_dtype(args.precision)
    memory = args.accelerator_memory * GIB if args.accelerator_memory else device_memory_bytes(resolve_device(args.device))
    if args.accelerator_memory is None and resolve_device(args.device).type == "cpu":
        memory = None  # no accelerator here: nothing to fit
    first_frame = not args.no_first_frame_model
    print(f"Planning {' '.join(config.flags()) or 'balanced'} in {args.precision} on the meta device (a minute at the paper's size)...")
    build = released_models(args.stages, dtype, first_frame)
    plan = plan_config(build, settings, args.stages, config, first_frame)
    print(plan_table(plan))
    print(f"\nAt the dense bf16 peak: {physical_limit(plan)}.")
    if memory is None:
        print("No accelerator found: pass --accelerator-memory GiB to see what fits one.")
        return 0
    if plan.peak_accelerator <= memory:
        print(f"Fits in {memory / GIB:.1f} GiB.")
        return 0
    print(f"Needs {plan.peak_accelerator / GIB:.1f} GiB, more than {memory / GIB:.1f} GiB; trying leaner options...")
    found = fewest_options_that_fit(build, settings, args.stages, config, memory, first_frame)
    if found is None:
        print("Nothing fits: use smaller sizes or fewer frames.")
        return 1
    fitting, fitted = found
    print(f"Fits in {memory / GIB:.1f} GiB with {' '.join(fitting.flags())}: peak {fitted.peak_accelerator / GIB:.1f} GiB.")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Write a tiny random model set and run the whole cascade on it."""
    from .model_setup import ModelSetup
    from .settings import SpeedSettings
    from .speed.cache_spec import parse_cache_specs
    from .tiny import write_tiny_models

    print(DEMO_NOTICE)
    caches = parse_cache_specs(args.cache)
    ns = argparse.Namespace(
        stages=4,
        format="gif",
        output=str(Path(args.output_dir) / "demo.mp4"),
        save_intermediate=True,
        overwrite=args.overwrite,
    )
    _check_outputs(ns)
    with tempfile.TemporaryDirectory(prefix="show1-demo-") as tmp:
        models = Path(args.models_dir) if args.models_dir else Path(tmp)
        write_tiny_models(models, overwrite=args.overwrite)
        setup = ModelSetup(precision="fp32", device="cpu", models_dir=str(models), offline=True, speed=SpeedSettings(cache=caches))
        paths = _run_cascade(setup, ns, demo_settings(), args.prompt)
    for path in paths:
        print(f"wrote {path}")
    print("Done: every stage ran. Remember, random weights make noise.")
    return 0


def cmd_tiny_models(args: argparse.Namespace) -> int:
    """Write the tiny random model set in the released layout."""
    from .tiny import write_tiny_models

    folders = write_tiny_models(Path(args.directory), fmt=args.format, seed=args.seed, overwrite=args.overwrite)
    for name, folder in folders.items():
        print(f"{name}: {folder}")
    return 0


def _download_requests(args: argparse.Namespace) -> list[tuple[str, bool]]:
    """(repo id, with its T5 text encoder) for each checkpoint to fetch: the named ones, or what the cascade needs."""
    from .cascade import CascadeCheckpoints
    from .errors import InputError
    from .loading.registry import KNOWN_CHECKPOINTS, T5_CHECKPOINT, known_checkpoint

    if args.names:
        unknown = [name for name in args.names if known_checkpoint(name) is None]
        if unknown:
            choices = ", ".join(c.repo_id for c in KNOWN_CHECKPOINTS.values())
            raise InputError(f"unknown checkpoint(s) {', '.join(unknown)}; choose from {choices} (or their folder names)")
        named = dict.fromkeys(known_checkpoint(name) for name in args.names)
        return [(checkpoint.repo_id, checkpoint == T5_CHECKPOINT) for checkpoint in named]
    checkpoints = CascadeCheckpoints.resolve(
        args.models_dir, args.stages, use_first_frame_model=not args.no_first_frame_model, allow_download=not args.offline
    )
    folders = [getattr(checkpoints, f.name) for f in dataclasses.fields(checkpoints)]
    repos = [known_checkpoint(folder.name).repo_id for folder in folders if folder is not None and folder != Path()]
    return [(repo, repo == T5_CHECKPOINT.repo_id) for repo in dict.fromkeys(repos)]


def cmd_download(args: argparse.Namespace) -> int:
    """Download checkpoints (the named ones, or all the cascade needs), verified against the Hub's checksums."""
    from .loading.hub import resolve_checkpoint, verify_checkpoint

    for repo_id, with_text_encoder in _download_requests(args):
        folder = resolve_checkpoint(repo_id, args.models_dir, with_text_encoder=with_text_encoder, allow_download=not args.offline)
        if args.verify:
            damaged = verify_checkpoint(repo_id, args.models_dir, with_text_encoder=with_text_encoder, allow_download=not args.offline)
            state = f"re-downloaded {len(damaged)} damaged file(s): {', '.join(damaged)}" if damaged else "every file verified"
            print(f"{repo_id}: {folder} ({state})")
        else:
            print(f"{repo_id}: {folder}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Rewrite a checkpoint folder as safetensors."""
    from .loading.convert import convert_checkpoint
    from .loading.weights import parse_dtype

    dtype = parse_dtype(args.precision) if args.precision else None
    for path in convert_checkpoint(Path(args.source), Path(args.target), dtype=dtype):
        print(f"wrote {path}")
    return 0


def _pool_sizes(text: str) -> dict[str, int]:
    """``text=1,pixel_sr=4`` -> ``{"text": 1, "pixel_sr": 4}``."""
    sizes = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        pool, sep, size = part.partition("=")
        if not sep or not size.strip().isdigit():
            raise argparse.ArgumentTypeError(f"{part!r} is not POOL=N")
        sizes[pool.strip()] = int(size)
    return sizes


def _batch_flags(parser: argparse.ArgumentParser) -> None:
    """How ``show1 batch`` spreads its work over Ray."""
    from .batch.options import MODES, POOLS

    group = parser.add_argument_group("spreading the work (Ray)")
    group.add_argument(
        "--by",
        default="video",
        choices=MODES,
        help="video: each worker runs whole cascades with its models kept loaded (a GPU that holds every model); "
        "stage: one pool of workers per stage, videos passed between them (smaller GPUs; no model reloads)",
    )
    group.add_argument("--ray-address", default=None, help="join this Ray cluster (default: start one on this machine)")
    group.add_argument("--workers", type=int, default=None, help="--by video: cascades at once (default: one per GPU, else per CPU)")
    group.add_argument("--per-worker", type=float, default=1.0, help="GPUs (or --worker-resource units) per worker (default 1)")
    group.add_argument(
        "--worker-resource", default=None, help="schedule workers on this Ray resource: GPU, CPU or a custom one (default: GPU if any)"
    )
    group.add_argument(
        "--pool-sizes",
        type=_pool_sizes,
        default={},
        metavar="POOL=N,...",
        help=f"--by stage: workers per pool ({', '.join(POOLS)}); default: by each stage's share of the compute",
    )


def _model_flags(parser: argparse.ArgumentParser) -> None:
    """The options of a run that are not stage or speed settings: prompts, seed, stages, models, device, memory, LoRAs."""
    from .memory import MemoryPolicy
    from .settings import PAPER_SETTINGS

    parser.add_argument("--negative-prompt", default=PAPER_SETTINGS.negative_prompt, help="negative prompt for stages 1-3")
    parser.add_argument("--latent-negative-prompt", default=PAPER_SETTINGS.latent_negative_prompt, help="negative prompt for stage 4")
    parser.add_argument("--seed", type=int, default=PAPER_SETTINGS.seed)
    parser.add_argument("--stages", type=int, default=4, choices=[1, 2, 3, 4], help="stop after this stage")
    parser.add_argument("--no-first-frame-model", action="store_true", help="bilinear first frame instead of the gated IF-II-L")
    parser.add_argument("--clean-caption", action="store_true", help="clean the prompt as DeepFloyd IF does (needs show1[captions])")
    parser.add_argument("--models-dir", default=None, help="where checkpoints live or are downloaded ($SHOW1_MODELS_DIR)")
    parser.add_argument("--offline", action="store_true", help="never download; fail if a checkpoint is missing")
    parser.add_argument("--device", default=None, help="cuda, cuda:1, mps or cpu (default: best available)")
    parser.add_argument("--precision", default=None, choices=["fp16", "bf16", "fp32"], help="default fp16 on GPU, fp32 on CPU")
    parser.add_argument("--memory", default=MemoryPolicy.BALANCED.value, choices=[p.value for p in MemoryPolicy])
    parser.add_argument(
        "--motion-lora",
        action="append",
        default=[],
        metavar="FILE[:SCALE]",
        help="a motion LoRA from `show1 train-motion` for stage 1 or 2 (its file says which), at SCALE (default 1); repeat to stack",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``show1`` command."""
    from .memory import MemoryPolicy
    from .settings import PAPER_SETTINGS
    from .training.command import add_train_motion_parser

    parser = argparse.ArgumentParser(prog="show1", description="Show-1 text-to-video: the four-stage cascade on PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="text to video with the released checkpoints")
    gen.add_argument("prompt")
    gen.add_argument("-o", "--output", default="show1.mp4", help="video file (.mp4, .gif or .webp)")
    gen.add_argument("--format", default="", help="extra formats to write too, e.g. gif,webp")
    gen.add_argument("--save-intermediate", action="store_true", help="also write every earlier stage's video")
    gen.add_argument("--overwrite", action="store_true", help="replace output files that already exist (refused otherwise)")
    _model_flags(gen)
    _speed_flags(gen)
    _stage_flags(gen)
    gen.set_defaults(func=cmd_generate)

    batch = sub.add_parser("batch", help="many videos from a prompt file on Ray (one machine or a cluster), resumable")
    batch.add_argument("prompts", help="prompt file: one prompt a line (.txt), JSON Lines (.jsonl) or VBench's prompt JSON (.json)")
    batch.add_argument("--out", required=True, help="output folder: {prompt}-{sample}.mp4 per video and manifest.jsonl")
    batch.add_argument("--samples", type=int, default=1, help="videos per prompt (VBench asks for 5)")
    batch.add_argument("--overwrite", action="store_true", help="make again the videos --out holds with other settings")
    _batch_flags(batch)
    _model_flags(batch)
    _speed_flags(batch)
    _stage_flags(batch)
    batch.set_defaults(func=cmd_batch)

    plan = sub.add_parser(
        "plan",
        help="peak accelerator and host memory and FLOPs of a run, per stage, planned on the meta device (no GPU, no download)",
    )
    plan.add_argument("--stages", type=int, default=4, choices=[1, 2, 3, 4], help="stop after this stage")
    plan.set_defaults(
        seed=PAPER_SETTINGS.seed,
        negative_prompt=PAPER_SETTINGS.negative_prompt,
        latent_negative_prompt=PAPER_SETTINGS.latent_negative_prompt,
    )
    plan.add_argument("--no-first-frame-model", action="store_true", help="bilinear first frame instead of the gated IF-II-L")
    plan.add_argument("--precision", default="fp16", choices=["fp16", "bf16", "fp32"], help="default fp16, as generate on a GPU")
    plan.add_argument("--memory", default=MemoryPolicy.BALANCED.value, choices=[p.value for p in MemoryPolicy])
    plan.add_argument("--device", default=None, help="the accelerator whose memory to fit (default: best available)")
    plan.add_argument("--accelerator-memory", type=float, default=None, metavar="GIB", help="fit this many GiB instead of the device's")
    _speed_flags(plan)
    _stage_flags(plan)
    plan.set_defaults(func=cmd_plan)

    demo = sub.add_parser("demo", help="run the whole cascade on tiny random models (no download)")
    demo.add_argument("-o", "--output-dir", default="show1-demo")
    demo.add_argument("--prompt", default="a panda playing guitar on the beach")
    demo.add_argument("--models-dir", default=None, help="keep the tiny models here instead of a temporary folder")
    demo.add_argument(
        "--overwrite", action="store_true", help="replace the demo's files (and the tiny models in --models-dir) if they exist"
    )
    _cache_flag(demo)
    demo.set_defaults(func=cmd_demo)

    tiny = sub.add_parser("tiny-models", help="write the tiny random model set in the released layout")
    tiny.add_argument("directory")
    tiny.add_argument("--format", default="bin", choices=["bin", "safetensors"])
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument("--overwrite", action="store_true", help="write into a folder that holds something, replacing its checkpoint folders")
    tiny.set_defaults(func=cmd_tiny_models)

    dl = sub.add_parser("download", help="download the released checkpoints (verified against the Hub's checksums)")
    dl.add_argument(
        "names", nargs="*", help="checkpoints to fetch, e.g. showlab/show-1-base or show-1-sr1 (default: all the cascade needs)"
    )
    dl.add_argument("--models-dir", default=None, help="where checkpoints are downloaded ($SHOW1_MODELS_DIR)")
    dl.add_argument("--stages", type=int, default=4, choices=[1, 2, 3, 4], help="without names: fetch what these stages need")
    dl.add_argument("--no-first-frame-model", action="store_true", help="without names: skip the gated IF-II-L")
    dl.add_argument("--verify", action="store_true", help="re-hash every file against the Hub's checksums; re-fetch damaged ones")
    dl.add_argument("--offline", action="store_true", help="never download (with --verify: check against the last download's record)")
    dl.set_defaults(func=cmd_download)

    conv = sub.add_parser("convert", help="rewrite a checkpoint folder as safetensors")
    conv.add_argument("source")
    conv.add_argument("target")
    conv.add_argument("--precision", default=None, choices=["fp16", "bf16", "fp32"])
    conv.set_defaults(func=cmd_convert)

    add_train_motion_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``show1`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except GenerationCancelled as err:
        print(f"cancelled: {err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130
    except InvalidSettingsError as err:
        print(f"error: {InvalidSettingsError(err.problems, label=_flag)}", file=sys.stderr)
        return 2
    except Show1Error as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
