"""Text encoding: the original's tokenisation, the embeddings cache and caption cleaning."""

from __future__ import annotations

import pytest
import torch

from show1_core.captions import preprocess_prompt
from show1_core.errors import InputError, MissingFilesError
from show1_core.loading import load_text_encoder
from show1_core.text import MAX_TOKENS, EmbeddingCache, EncoderKind, TextEncoder, TextEncoderSpec, load_tokenizer


def _encoder(folder, kind, cache=None):
    return TextEncoder(TextEncoderSpec(folder, kind), cache=cache or EmbeddingCache())


def test_t5_encoding_is_the_originals(tiny_models):
    """Lower-cased, stripped, padded to 77 tokens, encoded with its attention mask."""
    folder = tiny_models["show-1-base"]
    embeds = _encoder(folder, EncoderKind.T5).encode("  A Panda Playing Guitar ", "")
    tokenizer = load_tokenizer(folder / "tokenizer", EncoderKind.T5)
    model = load_text_encoder(folder / "text_encoder")
    tokens = tokenizer(["a panda playing guitar"], padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    assert tokens.attention_mask.sum() < MAX_TOKENS  # padding is present, so the mask matters
    with torch.no_grad():
        expected = model(tokens.input_ids, attention_mask=tokens.attention_mask)[0]
        unmasked = model(tokens.input_ids)[0]
    assert embeds.positive.shape == (1, MAX_TOKENS, 32)
    assert torch.equal(embeds.positive, expected)
    assert not torch.allclose(embeds.positive, unmasked)


def test_long_prompts_are_truncated_to_77_tokens(tiny_models):
    embeds = _encoder(tiny_models["show-1-base"], EncoderKind.T5).encode("panda " * 200)
    assert embeds.positive.shape[1] == MAX_TOKENS


def test_clip_encoding_has_no_mask_and_keeps_case_handling_to_the_tokenizer(tiny_models):
    folder = tiny_models["show-1-sr2"]
    embeds = _encoder(folder, EncoderKind.CLIP).encode("a panda playing guitar", "low resolution, blur")
    tokenizer = load_tokenizer(folder / "tokenizer", EncoderKind.CLIP)
    model = load_text_encoder(folder / "text_encoder")
    tokens = tokenizer(["low resolution, blur"], padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(embeds.negative, model(tokens.input_ids)[0])


def test_cache_skips_the_encoder_in_memory_and_on_disk(tiny_models, tmp_path):
    folder = tiny_models["show-1-base"]
    first = _encoder(folder, EncoderKind.T5, EmbeddingCache(tmp_path))
    a = first.encode("a cat", "blurry")
    first.encode("a cat", "blurry")
    assert first.loads == 1
    assert first.is_cached(" A Cat", "blurry") and not first.is_cached("a dog", "blurry")
    second = _encoder(folder, EncoderKind.T5, EmbeddingCache(tmp_path))  # a new process, same disk cache
    b = second.encode("A CAT ", "blurry")
    assert second.loads == 0
    assert torch.equal(a.positive, b.positive) and torch.equal(a.negative, b.negative)
    second.encode("a dog", "blurry")
    assert second.loads == 1


def test_cache_keys_separate_encoders_and_precisions(tiny_models, tmp_path):
    cache = EmbeddingCache(tmp_path)
    fp32 = TextEncoder(TextEncoderSpec(tiny_models["show-1-base"], EncoderKind.T5), cache=cache)
    bf16 = TextEncoder(TextEncoderSpec(tiny_models["show-1-base"], EncoderKind.T5, torch.bfloat16), cache=cache)
    fp32.encode("a cat")
    assert bf16.encode("a cat").positive.dtype == torch.bfloat16
    assert bf16.loads == 1


def test_damaged_cache_file_is_recomputed(tiny_models, tmp_path):
    encoder = _encoder(tiny_models["show-1-base"], EncoderKind.T5, EmbeddingCache(tmp_path))
    encoder.encode("a cat")
    for file in tmp_path.glob("*.safetensors"):
        file.write_bytes(b"broken")
    again = _encoder(tiny_models["show-1-base"], EncoderKind.T5, EmbeddingCache(tmp_path))
    assert again.encode("a cat").positive.shape == (1, 77, 32)
    assert again.loads == 1


@pytest.mark.parametrize(
    "stored",
    [torch.full((1, 77, 32), float("nan")), torch.zeros(1, 77, 16), torch.zeros(1, 77, 32, dtype=torch.int64)],
    ids=["nan", "wrong width", "integers"],
)
def test_a_readable_cache_file_of_the_wrong_shape_dtype_or_values_is_recomputed(tiny_models, tmp_path, stored):
    from safetensors.torch import save_file

    first = _encoder(tiny_models["show-1-base"], EncoderKind.T5, EmbeddingCache(tmp_path)).encode("a cat")
    for file in tmp_path.glob("*.safetensors"):
        save_file({"embedding": stored}, str(file))
    again = _encoder(tiny_models["show-1-base"], EncoderKind.T5, EmbeddingCache(tmp_path))
    embeds = again.encode("a cat")
    assert again.loads == 1 and torch.equal(embeds.positive, first.positive)
    third = _encoder(tiny_models["show-1-base"], EncoderKind.T5, EmbeddingCache(tmp_path))
    assert torch.equal(third.encode("a cat").positive, first.positive) and third.loads == 0  # the repaired file is reused


@pytest.mark.parametrize("prompt", ["caf\udce9", b"cafe"], ids=["not utf-8", "bytes"])
def test_a_prompt_that_is_not_text_is_refused_in_one_line(tiny_models, tiny_root, tmp_path, capsys, prompt):
    encoder = _encoder(tiny_models["show-1-base"], EncoderKind.T5, EmbeddingCache(tmp_path))
    with pytest.raises(InputError, match="the negative prompt"):
        encoder.encode("a cat", prompt)
    if isinstance(prompt, str):  # as a Latin-1 terminal passes $'caf\xe9' (Python decodes argv with surrogateescape)
        from show1_core.cli import main

        args = ["generate", prompt, "-o", str(tmp_path / "v.mp4"), "--models-dir", str(tiny_root), "--offline", "--device", "cpu"]
        assert main(args) == 2
        assert capsys.readouterr().err == (
            "error: the prompt holds '\\udce9' at character 4, which is not text (a byte that is not UTF-8, from a terminal "
            "in another encoding?); give it as UTF-8\n"
        )


def test_memory_cache_is_bounded():
    cache = EmbeddingCache(max_entries=2)
    for i in range(3):
        cache.put("enc", f"p{i}", torch.zeros(1))
    assert cache.get("enc", "p0") is None and cache.get("enc", "p2") is not None


def test_disk_cache_keeps_the_newest_files(tmp_path):
    cache = EmbeddingCache(tmp_path, max_files=2)
    for i in range(3):
        cache.put("enc", f"p{i}", torch.zeros(1))
    assert len(list(tmp_path.glob("*.safetensors"))) == 2
    assert EmbeddingCache(tmp_path).get("enc", "p2") is not None and EmbeddingCache(tmp_path).get("enc", "p0") is None


def test_missing_tokenizer_folder(tiny_models, tmp_path):
    (tmp_path / "text_encoder").mkdir()
    with pytest.raises(MissingFilesError, match="tokenizer"):
        _encoder(tmp_path, EncoderKind.T5).encode("a cat")


@pytest.mark.parametrize(
    "caption, cleaned",
    [
        ("  A Panda Playing GUITAR ", "a panda playing guitar"),
        ("See https://example.com/x <b>Big</b> cat @someone", "see big cat"),
        ("this-is-a-slug-title-here", "this is a slug title here"),
        ("photo.jpg of a dog #123 “quoted”", 'of a dog "quoted"'),
        ("熊猫 panda", "panda"),
    ],
)
def test_caption_cleaning(caption, cleaned):
    assert preprocess_prompt(caption, clean=True) == cleaned


def test_without_cleaning_only_case_and_spaces_change():
    assert preprocess_prompt("  See <b>Big</b> Cat ") == "see <b>big</b> cat"


# --- the cache follows the encoder, not its folder -------------------------------------------


def test_rewriting_a_models_folder_in_place_invalidates_its_cached_embeddings(tmp_path):
    from show1_core.tiny import write_tiny_models

    cache_dir = tmp_path / "cache"
    rewritten = write_tiny_models(tmp_path / "models", seed=0)["show-1-base"]
    _encoder(rewritten, EncoderKind.T5, EmbeddingCache(cache_dir)).encode("a cat")
    write_tiny_models(tmp_path / "models", seed=1, overwrite=True)  # what `show1 tiny-models models --seed 1 --overwrite` does
    fresh = write_tiny_models(tmp_path / "fresh", seed=1)["show-1-base"]
    again = _encoder(rewritten, EncoderKind.T5, EmbeddingCache(cache_dir))
    expected = _encoder(fresh, EncoderKind.T5).encode("a cat")
    assert torch.equal(again.encode("a cat").positive, expected.positive)
    assert again.loads == 1


def test_a_copied_encoder_folder_keeps_its_cached_embeddings(tiny_models, tmp_path):
    import shutil

    cache = EmbeddingCache(tmp_path / "cache")
    _encoder(tiny_models["show-1-base"], EncoderKind.T5, cache).encode("a cat")
    copy = shutil.copytree(tiny_models["show-1-base"], tmp_path / "copy")  # copy2 keeps modification times
    moved = _encoder(copy, EncoderKind.T5, EmbeddingCache(tmp_path / "cache"))
    moved.encode("a cat")
    assert moved.loads == 0


def test_a_changed_tokenizer_changes_the_cache_key(tiny_models, tmp_path):
    import shutil

    copy = shutil.copytree(tiny_models["show-1-base"], tmp_path / "copy")
    before = TextEncoderSpec(copy, EncoderKind.T5).key
    config = copy / "tokenizer" / "tokenizer_config.json"
    config.write_text(config.read_text().replace("}", ', "note": "edited"}', 1))
    assert TextEncoderSpec(copy, EncoderKind.T5).key != before


@pytest.mark.parametrize("how", ["file-in-the-way", "read-only"])
def test_an_unwritable_models_folder_caches_embeddings_in_the_user_cache(tiny_root, tmp_path, monkeypatch, caplog, how):
    import os
    import shutil

    from show1_core.cli import main

    models = tmp_path / "models"
    shutil.copytree(tiny_root, models, ignore=shutil.ignore_patterns(".embeddings"))
    if how == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root can write into a read-only folder")
        models.chmod(0o555)
    else:
        (models / ".embeddings").write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    argv = ["generate", "a cat", "--models-dir", str(models), "--offline", "--stages", "1", "--keyframes-steps", "1"]
    try:
        assert main(argv + ["--device", "cpu", "-o", str(tmp_path / "out.mp4")]) == 0
    finally:
        models.chmod(0o755)
    notice = caplog.text  # one line on stderr outside pytest (the logging module's last-resort handler)
    assert "cannot be written; caching prompt embeddings in" in notice and str(tmp_path / "user-cache") in notice
    assert list((tmp_path / "user-cache" / "show1" / "embeddings").glob("*.safetensors"))
