"""Every check of settings and inputs, in one package: each interface enters it once.

- :mod:`.ranges` — the range of every setting (:data:`~.ranges.LIMITS`, read by the command
  line and the ComfyUI widgets alike) and each stage's ``*_problems``, without any model.
- :mod:`.models` — what each model allows, read from its configs (size steps, noise levels).
- :mod:`.memory` — a lower bound of each stage's memory against the device's.
- :mod:`.tensors` — input videos, images and sizes.
- :mod:`.stage_inputs` — one ``check_*_inputs`` per stage function, made before its first step.
- :mod:`.cascade` — :func:`~.cascade.validate_cascade`, all of the above for a whole run.

Entry points: ``show1 generate`` checks the ranges before any download, then
:class:`~show1_core.cascade.Show1Cascade` runs :func:`~.cascade.validate_cascade` once (its
stage runs skip their own checks); a stage function or runner called directly makes its
stage's ``check_*_inputs``; a ComfyUI node checks its widgets' ranges in ``VALIDATE_INPUTS``
and, when it runs, its stage's ``check_*_inputs`` with the models wired in.
"""
