"""Memory and compute plans of a run, made on the ``meta`` device (no GPU, no weights, no download).

- :mod:`.live_bytes` — live tensor bytes per device, current and peak, on real or ``meta`` tensors.
- :mod:`.meta_models` — the released models built on ``meta``.
- :mod:`.planner` — :func:`~.planner.plan_cascade`: the cascade's own code path on those models,
  per part of the run: accelerator and host bytes as the memory policy places the weights, and FLOPs.
"""
