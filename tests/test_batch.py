"""``show1 batch`` without Ray: prompt files, names, seeds, the manifest, resuming, worker sizing, and every
refusal before any work (tests/test_batch_ray.py runs the batches on a local Ray cluster)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from show1_core.batch import BatchOptions, PromptEntry, Spread, derive_seed, prepare_batch, read_prompts
from show1_core.batch.items import MAX_STEM_BYTES, batch_items, safe_stem, unique_stems
from show1_core.batch.manifest import DONE, FAILED, WRITING, Manifest, ManifestRow
from show1_core.batch.options import output_settings, settings_hash
from show1_core.batch.pipeline import WorkerShape, pool_sizes, stage_workers, video_workers
from show1_core.errors import InputError, InvalidSettingsError, OutputError
from show1_core.model_setup import ModelSetup
from show1_core.settings import PAPER_SETTINGS, CacheSettings, SpeedSettings, StageCaches


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- prompt files ---------------------------------------------------------------------------------------------


def test_a_text_file_gives_one_prompt_a_line_skipping_blank_lines(tmp_path):
    entries = read_prompts(_write(tmp_path / "p.txt", "a cat\n\n  a dog  \n"))
    assert [(e.line, e.prompt) for e in entries] == [(1, "a cat"), (3, "a dog")]


def test_a_jsonl_file_gives_seeds_names_and_settings(tmp_path):
    lines = ['{"prompt": "a cat", "seed": 7, "name": "cat"}', '{"prompt": "a dog", "settings": {"keyframes.steps": 5}}']
    entries = read_prompts(_write(tmp_path / "p.jsonl", "\n".join(lines)))
    assert entries[0] == PromptEntry(1, "a cat", 7, "cat", {})
    assert entries[1].settings == {"keyframes.steps": 5} and entries[1].seed is None


def test_vbench_prompt_json_reads_prompt_en(tmp_path):
    records = [{"prompt_en": "a cat", "dimension": ["subject_consistency"]}, {"prompt": "a dog"}, "a bird"]
    entries = read_prompts(_write(tmp_path / "VBench_full_info.json", json.dumps(records)))
    assert [e.prompt for e in entries] == ["a cat", "a dog", "a bird"]


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("p.jsonl", '{"prompt": "a cat"}\n{"prompt": "a dog"\n', r"p\.jsonl:2: not valid JSON"),
        ("p.jsonl", '{"prompt": "a cat", "sed": 3}\n', r"p\.jsonl:1: unknown field\(s\) sed"),
        ("p.jsonl", '{"prompt": "a cat", "seed": -1}\n', r"p\.jsonl:1: seed"),
        ("p.jsonl", '["a cat"]\n', r"p\.jsonl:1: expected a JSON object"),
        ("p.jsonl", '{"seed": 1}\n', r'p\.jsonl:1: no "prompt" field'),
        ("p.json", '[{"prompt_en": "a cat"}, {"dimension": []}]', r'p\.json entry 2: no "prompt_en"'),
        ("p.txt", "", r"holds no prompts"),
        ("p.jsonl", "\n\n", r"holds no prompts"),
    ],
)
def test_a_bad_prompt_file_is_refused_naming_the_line(tmp_path, name, text, expected):
    with pytest.raises(InputError, match=expected):
        read_prompts(_write(tmp_path / name, text))


def test_a_missing_or_non_utf8_prompt_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_prompts(tmp_path / "nothing.txt")
    (tmp_path / "latin.txt").write_bytes(b"a cat\ncaf\xe9\n")
    with pytest.raises(InputError, match=r"latin\.txt:2: not UTF-8"):
        read_prompts(tmp_path / "latin.txt")


# --- names and seeds ------------------------------------------------------------------------------------------


def test_names_follow_vbench_and_are_safe_unique_and_short_enough():
    assert safe_stem("a cat, running") == "a cat, running"
    assert safe_stem('a/b\\c:d*e?f"g<h>i|j\x01') == "a_b_c_d_e_f_g_h_i_j_"
    assert safe_stem(" .hidden. ") == "hidden"
    long = safe_stem("é" * 300)
    assert len(long.encode()) <= MAX_STEM_BYTES and long == "é" * (MAX_STEM_BYTES // 2)
    assert unique_stems(["a cat", "A Cat", "a dog", "a cat"]) == ["a cat", "A Cat (2)", "a dog", "a cat (3)"]


def test_items_are_named_prompt_dash_sample_and_seeded_by_the_documented_rule():
    entries = [PromptEntry(1, "a cat"), PromptEntry(2, "a cat"), PromptEntry(4, "a dog", seed=10, name="dog")]
    items = batch_items(entries, replace(PAPER_SETTINGS, seed=3), 2, "p.txt")
    assert [i.file_name for i in items] == ["a cat-0.mp4", "a cat-1.mp4", "a cat (2)-0.mp4", "a cat (2)-1.mp4", "dog-0.mp4", "dog-1.mp4"]
    assert [i.settings.seed for i in items[4:]] == [10, 11]
    assert items[0].settings.seed == derive_seed(3, 0, 0) and items[3].settings.seed == derive_seed(3, 1, 1)
    # the rule as docs/BATCH.md states it, computed independently here
    import hashlib

    digest = hashlib.sha256(b"show1-batch/3/1/1").digest()
    assert items[3].settings.seed == int.from_bytes(digest[:8], "big") & (2**63 - 1)
    # more samples keep the seeds of the earlier ones
    more = batch_items(entries, replace(PAPER_SETTINGS, seed=3), 3, "p.txt")
    assert [i.settings.seed for i in more if i.sample_index < 2] == [i.settings.seed for i in items]
    assert len({i.settings.seed for i in more}) == len(more)


def test_entry_settings_apply_to_that_entry_only_and_unknown_ones_name_the_line():
    entries = [PromptEntry(1, "a cat", settings={"keyframes.steps": 5, "negative_prompt": "blur"}), PromptEntry(2, "a dog")]
    cat, dog = batch_items(entries, PAPER_SETTINGS, 1, "p.jsonl")
    assert (cat.settings.keyframes.steps, cat.settings.negative_prompt) == (5, "blur")
    assert dog.settings.keyframes == PAPER_SETTINGS.keyframes
    with pytest.raises(InputError, match=r"p\.jsonl:3: unknown setting\(s\) keyframes\.stepz"):
        batch_items([PromptEntry(3, "a cat", settings={"keyframes.stepz": 5})], PAPER_SETTINGS, 1, "p.jsonl")


def test_the_settings_hash_follows_what_decides_the_video_only():
    item = batch_items([PromptEntry(1, "a cat")], PAPER_SETTINGS, 1, "p")[0]
    base = settings_hash(output_settings(item, ModelSetup(), {}))
    assert settings_hash(output_settings(item, ModelSetup(memory="minimal", device="cuda"), {})) == base
    assert settings_hash(output_settings(item, ModelSetup(precision="bf16"), {})) != base
    cached = ModelSetup(speed=SpeedSettings(cache=StageCaches.every(CacheSettings("pab"))))
    assert settings_hash(output_settings(item, cached, {})) != base
    assert settings_hash(output_settings(replace(item, settings=replace(item.settings, seed=1)), ModelSetup(), {})) == base
    steps = replace(item, settings=replace(item.settings, keyframes=replace(item.settings.keyframes, steps=5)))
    assert settings_hash(output_settings(steps, ModelSetup(), {})) != base


# --- the manifest ---------------------------------------------------------------------------------------------


def _row(item: str, status: str = DONE, **extra) -> ManifestRow:
    return ManifestRow(item, status, "a cat", 1, 0, 5, "h", file=f"{item}.mp4", **extra)


def test_the_manifest_keeps_every_row_and_survives_a_line_cut_short(tmp_path):
    manifest = Manifest(tmp_path)
    manifest.append(_row("a-0"))
    with manifest.path.open("ab") as handle:
        handle.write(b'{"item": "a-1", "stat')  # a run killed mid-line
    manifest.append(_row("a-1", FAILED, error="boom"))
    rows = manifest.rows()
    assert [(r.item, r.status) for r in rows] == [("a-0", DONE), ("a-1", FAILED)]
    assert manifest.skipped_lines == 1 and rows[0].finished.endswith("Z")


def _options(tmp_path: Path, **setup) -> BatchOptions:
    settings = replace(PAPER_SETTINGS, keyframes=replace(PAPER_SETTINGS.keyframes, width=32, height=16))
    return BatchOptions(settings, 2, ModelSetup(models_dir=str(tmp_path), offline=True, device="cpu", stages=1, **setup))


def test_prepare_sorts_finished_failed_and_new_items(tiny_root, tmp_path):
    prompts = _write(tmp_path / "p.txt", "a cat\n")
    out = tmp_path / "out"
    options = replace(_options(tmp_path), setup=replace(_options(tmp_path).setup, models_dir=str(tiny_root)))
    items, rows, progress, _ = prepare_batch(prompts, out, options)
    assert [i.name for i in progress.todo] == ["a cat-0", "a cat-1"] and not progress.finished
    manifest = Manifest(out)
    (out / "a cat-0.mp4").write_bytes(b"video")
    manifest.append(rows["a cat-0"])
    manifest.append(replace(rows["a cat-1"], status=FAILED, error="boom"))
    _, _, progress, _ = prepare_batch(prompts, out, options)
    assert [i.name for i in progress.finished] == ["a cat-0"] and [i.name for i in progress.todo] == ["a cat-1"]
    assert progress.retried == 1
    (out / "a cat-0.mp4").unlink()  # a finished video deleted since: made again
    _, _, progress, _ = prepare_batch(prompts, out, options)
    assert [i.name for i in progress.todo] == ["a cat-0", "a cat-1"]


def test_other_settings_over_a_batch_folder_are_refused_unless_overwrite(tiny_root, tmp_path):
    prompts = _write(tmp_path / "p.txt", "a cat\n")
    out = tmp_path / "out"
    options = replace(_options(tmp_path), setup=replace(_options(tmp_path).setup, models_dir=str(tiny_root)))
    _, rows, _, _ = prepare_batch(prompts, out, options)
    (out / "a cat-0.mp4").write_bytes(b"video")
    Manifest(out).append(rows["a cat-0"])
    steps = replace(options.settings, keyframes=replace(options.settings.keyframes, steps=5))
    with pytest.raises(OutputError, match=r"other settings \(e\.g\. a cat-0\.mp4: settings\.keyframes\.steps 75 -> 5\).*--overwrite"):
        prepare_batch(prompts, out, replace(options, settings=steps))
    _, _, progress, _ = prepare_batch(prompts, out, replace(options, settings=steps, overwrite=True))
    assert progress.replaced == 1 and len(progress.todo) == 2
    with pytest.raises(OutputError, match="other settings"):  # another base seed: other seeds
        prepare_batch(prompts, out, replace(options, settings=replace(options.settings, seed=1)))


def test_files_the_batch_did_not_write_are_never_overwritten_without_asking(tiny_root, tmp_path):
    prompts = _write(tmp_path / "p.txt", "a cat\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a cat-1.mp4").write_bytes(b"someone else's video")
    options = replace(_options(tmp_path), setup=replace(_options(tmp_path).setup, models_dir=str(tiny_root)))
    with pytest.raises(OutputError, match=r"did not make \(a cat-1\.mp4\)"):
        prepare_batch(prompts, out, options)
    _, rows, _, _ = prepare_batch(prompts, out, replace(options, overwrite=True))
    # a file the batch claimed (a "writing" row) before it was stopped is its own: made again without asking
    (out / "a cat-1.mp4").write_bytes(b"half-recorded")
    Manifest(out).append(replace(rows["a cat-1"], status=WRITING))
    _, _, progress, _ = prepare_batch(prompts, out, options)
    assert [i.name for i in progress.todo] == ["a cat-0", "a cat-1"]


def test_settings_that_cannot_run_are_refused_before_any_work_naming_the_line(tiny_root, tmp_path):
    options = replace(_options(tmp_path), setup=replace(_options(tmp_path).setup, models_dir=str(tiny_root)))
    bad_entry = _write(tmp_path / "p.jsonl", '{"prompt": "a cat"}\n{"prompt": "a dog", "settings": {"keyframes.width": 33}}\n')
    with pytest.raises(InputError, match=r"p\.jsonl:2: .*keyframes\.width"):
        prepare_batch(bad_entry, tmp_path / "out", options)
    assert not (tmp_path / "out").exists()
    last_seed = _write(tmp_path / "s.jsonl", '{"prompt": "a cat", "seed": 18446744073709551615}\n')  # its 2nd sample's seed is too big
    with pytest.raises(InputError, match=r"s\.jsonl:1: seed must be a whole number from 0 to 18446744073709551615"):
        prepare_batch(last_seed, tmp_path / "out", options)
    bad_flag = replace(options, settings=replace(options.settings, keyframes=replace(options.settings.keyframes, steps=0)))
    with pytest.raises(InvalidSettingsError, match="keyframes.steps"):
        prepare_batch(_write(tmp_path / "p.txt", "a cat\n"), tmp_path / "out", bad_flag)


def test_an_unwritable_output_folder_is_refused_before_any_work(tiny_root, tmp_path):
    options = replace(_options(tmp_path), setup=replace(_options(tmp_path).setup, models_dir=str(tiny_root)))
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        prepare_batch(_write(tmp_path / "p.txt", "a cat\n"), tmp_path / "file" / "out", options)


def test_bad_spread_options_are_refused(tiny_root, tmp_path):
    options = replace(_options(tmp_path), setup=replace(_options(tmp_path).setup, models_dir=str(tiny_root)))
    prompts = _write(tmp_path / "p.txt", "a cat\n")
    with pytest.raises(InputError, match="--samples"):
        prepare_batch(prompts, tmp_path / "out", replace(options, samples=0))
    with pytest.raises(InputError, match="--by"):
        prepare_batch(prompts, tmp_path / "out", replace(options, spread=Spread(by="frame")))
    with pytest.raises(InputError, match="--pool-sizes"):
        prepare_batch(prompts, tmp_path / "out", replace(options, spread=Spread(by="stage", pool_sizes={"vae": 1})))


# --- sizing the workers ---------------------------------------------------------------------------------------


def test_video_workers_take_one_gpu_each_by_default_or_the_cpus_without_gpus():
    assert video_workers(Spread(), {"CPU": 16, "GPU": 8}) == (8, WorkerShape("GPU", 1.0, 1.0))
    assert video_workers(Spread(per_worker=0.5), {"CPU": 4, "GPU": 2}) == (4, WorkerShape("GPU", 0.5, 1.0))
    assert video_workers(Spread(), {"CPU": 2}) == (2, WorkerShape("CPU", 1.0, 1.0))
    assert video_workers(Spread(worker_resource="show1_gpu"), {"CPU": 2, "show1_gpu": 2})[1].remote_args() == {
        "resources": {"show1_gpu": 1.0},
        "num_cpus": 1.0,
    }
    with pytest.raises(InputError, match="needs 3 GPU; the cluster has 2"):
        video_workers(Spread(workers=3), {"CPU": 8, "GPU": 2})
    with pytest.raises(InputError, match="no show1_gpu"):
        video_workers(Spread(worker_resource="show1_gpu"), {"CPU": 8, "GPU": 2})


def test_stage_pools_are_sized_by_their_share_of_the_compute():
    shares = {"text": 0.01, "keyframes": 0.1, "interpolation": 0.15, "pixel_sr": 0.64, "latent_sr": 0.1}
    sizes, shape = stage_workers(Spread(by="stage"), {"CPU": 32, "GPU": 8}, shares, 4)
    assert sizes == {"text": 1, "keyframes": 1, "interpolation": 1, "pixel_sr": 4, "latent_sr": 1} and shape.amount == 1
    assert pool_sizes(("text", "keyframes"), shares, 8, {"text": 2}) == {"text": 2, "keyframes": 6}
    # fewer GPUs than pools: every pool still gets a worker, sharing GPUs so that all of them fit
    sizes, shape = stage_workers(Spread(by="stage"), {"CPU": 2, "show1_gpu": 2}, shares, 4)
    assert sum(sizes.values()) == 5 and shape.amount == pytest.approx(1 / 3) and shape.cpus == pytest.approx(0.4)
    sizes, _ = stage_workers(Spread(by="stage"), {"CPU": 2, "GPU": 2}, shares, 2)
    assert list(sizes) == ["text", "keyframes", "interpolation"]


def test_without_ray_the_batch_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    from show1_core.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as it does where Ray is not installed
    prompts = _write(tmp_path / "p.txt", "a cat\n")
    assert main(["batch", str(prompts), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 2
    assert 'pip install "show1[ray]"' in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
