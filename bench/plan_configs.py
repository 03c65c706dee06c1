"""Plan every benchmark configuration at the paper's settings on the meta device and print docs/PERFORMANCE.md's tables.

    python bench/plan_configs.py [--precision fp16] [--stages 4] > plan.md

No GPU and no download: the released models are built on ``meta`` (show1_core.plan). The
FLOPs are counted once (no option changes them); each configuration's memory is planned in one
pass. Compiled and attention-backend configurations are left out: they change speed, not what
is allocated.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_bench import configs  # noqa: E402

from show1_core.footprint import GIB  # noqa: E402
from show1_core.loading.weights import parse_dtype  # noqa: E402
from show1_core.plan.planner import CascadePlan, plan_cascade  # noqa: E402
from show1_core.plan.report import LABELS, physical_limit, plan_table  # noqa: E402
from show1_core.settings import DEMO_APP_SETTINGS, PAPER_SETTINGS  # noqa: E402

GOALS = {"balanced": 8 * GIB, "leanest": 4 * GIB}
"""The memory goals: the whole cascade at the paper's settings under 8 GiB with balanced, under 4 GiB with the leanest options."""


def _peaks_row(name: str, plan: CascadePlan, parts: list[str]) -> str:
    cells = [f"{plan.part(part).accelerator / GIB:.2f}" if part in {p.name for p in plan.parts} else "" for part in parts]
    goal = GOALS.get(name)
    verdict = "" if goal is None else (" (goal met)" if plan.peak_accelerator <= goal else f" (goal {goal / GIB:.0f} GiB missed)")
    return f"| {name} | " + " | ".join(cells) + f" | **{plan.peak_accelerator / GIB:.2f}**{verdict} | {plan.peak_host / GIB:.2f} |"


def _with_flops_of(plan: CascadePlan, counted: CascadePlan) -> CascadePlan:
    """``plan`` with the FLOPs counted for ``counted`` (no memory option changes them)."""
    return CascadePlan(tuple(replace(part, flops=counted.part(part.name).flops) for part in plan.parts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="fp16", choices=["fp16", "bf16", "fp32"])
    parser.add_argument("--stages", type=int, default=4, choices=[1, 2, 3, 4])
    args = parser.parse_args(argv)
    dtype = parse_dtype(args.precision)
    started = time.perf_counter()
    wanted = [c for c in configs(torch.device("cuda")) if not c.speed.compile and c.speed.attention == "sdpa"]
    plans = {}
    for config in wanted:
        settings = PAPER_SETTINGS
        if config.one_window_at_a_time:
            settings = replace(settings, interpolation=replace(settings.interpolation, window_batch=1))
        plans[config.name] = plan_cascade(
            settings,
            args.stages,
            dtype,
            config.policy,
            config.speed,
            policy_settings=config.policy_settings,
            count_flops=config.name == "balanced",
        )
        print(f"planned {config.name}", file=sys.stderr)
    demo = plan_cascade(DEMO_APP_SETTINGS, args.stages, dtype)
    parts = [p.name for p in plans["balanced"].parts]
    print(f"Planned accelerator peak per part, GiB ({args.precision}, paper settings, 29 x 576x320):\n")
    print("| configuration | " + " | ".join(LABELS[p] for p in parts) + " | peak | host peak |")
    print("|---|" + "---:|" * (len(parts) + 2))
    for config in wanted:
        print(_peaks_row(config.name, plans[config.name], parts))
    for name in ("balanced", "leanest", "original"):
        print(f"\n`{name}`, every part:\n")
        print(plan_table(_with_flops_of(plans[name], plans["balanced"])))
    print(f"\nFLOPs at the paper's step counts: {plans['balanced'].flops / 1e15:.2f} PFLOP; {physical_limit(plans['balanced'])}.")
    preset = "`--preset demo-app` (the demo app's step counts, 75/50/50/50/50)"
    print(f"FLOPs with {preset}: {demo.flops / 1e15:.2f} PFLOP; {physical_limit(demo)}.")
    print(f"\n(planned in {time.perf_counter() - started:.0f} s on the CPU)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
