"""wav2vec2 / HuBERT / WavLM upstreams: parity with transformers, checkpoint formats, frames, padding, errors."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

from superb.errors import CheckpointError, ConfigError  # noqa: E402
from superb.extract.upstreams import checkpoints, ssl  # noqa: E402
from superb.extract.upstreams.base import file_sha256  # noqa: E402
from superb.extract.upstreams.fairseq_unpickle import StandIn, load_pickled, parse_conv_layers  # noqa: E402
from superb.testing import tiny_models as tm  # noqa: E402

CLASSES = {"wav2vec2": ssl.Wav2Vec2, "hubert": ssl.Hubert, "wavlm": ssl.WavLM}
CASES = [(f, v) for f in tm.FAMILIES for v in tm.VARIANTS]
SEED = 3


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Every (family, variant) saved in every format from the same weights: {(f, v): {format: path}}."""
    root = tmp_path_factory.mktemp("ckpts")
    out = {}
    for family, variant in CASES:
        stem = root / f"{family}_{variant}"
        paths = {
            "hf": stem.with_name(stem.name + "_hf"),
            "hf_legacy": stem.with_name(stem.name + "_hf_legacy"),
            "fairseq": stem.with_suffix(".pt"),
            "torchaudio": stem.with_name(stem.name + "_ta.pt"),
            "torchaudio_st": stem.with_name(stem.name + "_ta.safetensors"),
        }
        tm.save_hf_folder(family, paths["hf"], SEED, variant=variant)
        tm.save_hf_folder(family, paths["hf_legacy"], SEED, variant=variant, legacy=True)
        tm.save_fairseq_checkpoint(family, paths["fairseq"], SEED, variant=variant)
        tm.save_torchaudio_checkpoint(family, paths["torchaudio"], SEED, variant=variant)
        tm.save_torchaudio_checkpoint(family, paths["torchaudio_st"], SEED, variant=variant)
        if family != "wavlm":  # unilm WavLM checkpoints only come with a flat cfg
            paths["fairseq_args"] = stem.with_name(stem.name + "_args.pt")
            tm.save_fairseq_checkpoint(family, paths["fairseq_args"], SEED, variant=variant, style="args")
            paths["fairseq_legacy"] = stem.with_name(stem.name + "_legacy.pt")  # pre-zip torch.save
            tm.save_fairseq_checkpoint(family, paths["fairseq_legacy"], SEED, variant=variant, zip_format=False)
        out[family, variant] = paths
    return out


def _wav(n: int, seed: int = 0, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, n, generator=torch.Generator().manual_seed(seed))


def _run(upstream, wavs: torch.Tensor, lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return upstream(wavs, torch.tensor(lengths))


def _quiet_wav(n: int, seed: int) -> torch.Tensor:
    """Quiet speech-like level with a DC offset: the mean, the variance and the eps all show in the features."""
    return 1e-3 * _wav(n, seed=seed) + 2e-3


def _transformers_states(folder: Path, family: str, variant: str, waves: list[torch.Tensor],
                         attention_mask: bool | None = None) -> tuple[torch.Tensor, list[int], torch.Tensor]:
    """transformers' model on the input its feature extractor (read from ``folder``) makes of ``waves``.

    Returns every hidden state ``(batch, frames, layers, dim)`` (for pre-LN the last one after the encoder's
    final norm, SPEC §2), each row's valid frames, and transformers' ``last_hidden_state``.
    """
    import transformers

    extractor = transformers.Wav2Vec2FeatureExtractor.from_pretrained(folder)
    inputs = extractor([w.numpy() for w in waves], sampling_rate=16000, padding=True, return_tensors="pt",
                       return_attention_mask=attention_mask)
    model = tm.build_hf_model(family, SEED, variant)
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
        hidden = list(out.hidden_states)
        if variant == "pre_ln":
            hidden[-1] = model.encoder.layer_norm(hidden[-1])
    frames = model._get_feat_extract_output_lengths(torch.tensor([len(w) for w in waves])).tolist()
    return torch.stack(hidden, dim=2), frames, out.last_hidden_state


def _with_preprocessor(folder: Path, copy: Path, **settings: bool) -> Path:
    """A copy of a Hugging Face folder whose preprocessor_config.json holds ``settings`` (none: no file)."""
    import transformers

    shutil.copytree(folder, copy)
    (copy / checkpoints.PREPROCESSOR_FILE).unlink()
    if settings:
        transformers.Wav2Vec2FeatureExtractor(**settings).save_pretrained(copy)
    return copy


@pytest.mark.parametrize(("family", "variant"), CASES)
def test_huggingface_folder_matches_transformers(saved, family, variant):
    folder = saved[family, variant]["hf"]
    upstream = CLASSES[family].create(ckpt=folder)
    pre_ln = variant == "pre_ln"
    assert upstream.normalize is pre_ln  # the tiny folders say do_normalize as fairseq's rule does
    assert upstream.spec.pad_safe is pre_ln
    assert (upstream.spec.num_layers, upstream.spec.dim) == (tm.LAYERS + 1, tm.DIM)
    wav = _quiet_wav(6000, seed=1)
    expected, _, last = _transformers_states(folder, family, variant, [wav[0]])
    ours, frames = _run(upstream, wav, [6000])
    assert ours.shape == expected.shape == (1, upstream.spec.num_frames(6000), tm.LAYERS + 1, tm.DIM)
    assert frames.tolist() == [upstream.spec.num_frames(6000)]
    assert (ours - expected).abs().max().item() <= 1e-4
    assert (ours[:, :, -1] - last).abs().max().item() <= 1e-4


@pytest.mark.parametrize(("family", "variant"), CASES)
def test_preprocessor_config_decides_normalisation(saved, family, variant, tmp_path):
    """``do_normalize`` against fairseq's rule: superb follows the file, as transformers does, and says so."""
    folder = saved[family, variant]["hf"]
    flipped = variant == "post_ln"  # group norm: fairseq trained on raw waveforms; this file says normalise
    copy = _with_preprocessor(folder, tmp_path / "flipped", do_normalize=flipped, return_attention_mask=True)
    with pytest.warns(UserWarning, match=f"do_normalize: {str(flipped).lower()}; superb follows it, as transformers"):
        upstream = CLASSES[family].create(ckpt=copy)
    assert upstream.normalize is flipped and upstream.spec.pad_safe is (variant == "pre_ln")
    identity = upstream.identity()
    assert identity["normalize"] is flipped
    assert identity["preprocessor"] == {"do_normalize": flipped, "return_attention_mask": True}
    wav = _quiet_wav(5000, seed=3)
    expected, _, _ = _transformers_states(copy, family, variant, [wav[0]])
    ours, _ = _run(upstream, wav, [5000])
    assert (ours - expected).abs().max().item() <= 1e-4
    default, _ = _run(CLASSES[family].create(ckpt=folder), wav, [5000])
    assert (ours - default).abs().max().item() > 1e-2  # the file changed the features
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the override is what the user asked for: nothing to warn about
        forced = CLASSES[family].create(ckpt=copy, options={"normalize": not flipped})
    assert (_run(forced, wav, [5000])[0] - default).abs().max().item() <= 1e-5


def test_without_preprocessor_config_the_architecture_decides(saved, tmp_path):
    for variant in tm.VARIANTS:
        copy = _with_preprocessor(saved["hubert", variant]["hf"], tmp_path / variant)
        upstream = ssl.Hubert.create(ckpt=copy)
        assert upstream.normalize is (variant == "pre_ln")  # layer-norm extractor ⇔ normalised input
        assert upstream.normalize_eps == checkpoints.HF_NORM_EPS
        assert upstream.identity()["preprocessor"] is None
    keys = _with_preprocessor(saved["hubert", "post_ln"]["hf"], tmp_path / "keys")
    (keys / checkpoints.PREPROCESSOR_FILE).write_text('{"feature_size": 1}')  # transformers' defaults apply
    with pytest.warns(UserWarning, match="do_normalize: true"):
        upstream = ssl.Hubert.create(ckpt=keys)
    assert upstream.identity()["preprocessor"] == {"do_normalize": True, "return_attention_mask": False}


@pytest.mark.parametrize("family", tm.FAMILIES)
def test_padded_batch_equals_transformers_with_its_attention_mask(saved, family):
    """s3prl's hf_* upstreams batch through the feature extractor with an attention mask; for a layer-norm
    model that is batch-independent, and superb's padded batch gives the same numbers."""
    folder = saved[family, "pre_ln"]["hf"]
    waves = [_quiet_wav(n, seed=20 + n)[0] for n in (7000, 3333, 1200)]
    expected, frames, _ = _transformers_states(folder, family, "pre_ln", waves, attention_mask=True)
    batch = torch.zeros(len(waves), 7000)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    ours, ours_frames = _run(CLASSES[family].create(ckpt=folder), batch, [len(w) for w in waves])
    assert ours_frames.tolist() == frames
    for i, n in enumerate(frames):
        assert (ours[i, :n] - expected[i, :n]).abs().max().item() <= 1e-4, i


@pytest.mark.parametrize(("family", "variant"), CASES)
def test_every_format_gives_the_same_features(saved, family, variant):
    paths = saved[family, variant]
    wav = _wav(5000, seed=2)
    hf = CLASSES[family].create(ckpt=paths["hf"])
    assert hf.normalize_eps == checkpoints.HF_NORM_EPS
    hf.normalize_eps = checkpoints.FAIRSEQ_NORM_EPS  # the same input for all: the weights are compared here
    reference, _ = _run(hf, wav, [5000])
    for fmt, expected_format in (("hf_legacy", "huggingface"), ("fairseq", "fairseq"), ("fairseq_args", "fairseq"),
                                 ("fairseq_legacy", "fairseq"), ("torchaudio", "torchaudio"),
                                 ("torchaudio_st", "torchaudio")):
        if fmt not in paths:
            continue
        upstream = CLASSES[family].create(ckpt=paths[fmt])
        assert upstream.identity()["format"] == expected_format, fmt
        assert upstream.normalize is (variant == "pre_ln"), fmt
        eps = checkpoints.HF_NORM_EPS if expected_format == "huggingface" else checkpoints.FAIRSEQ_NORM_EPS
        assert upstream.normalize_eps == eps, fmt  # transformers' feature extractor / fairseq's layer_norm
        upstream.normalize_eps = checkpoints.FAIRSEQ_NORM_EPS
        ours, _ = _run(upstream, wav, [5000])
        assert (ours - reference).abs().max().item() <= 1e-5, fmt


def test_fairseq_pickles_are_rebuilt_as_plain_data(saved):
    payload = load_pickled(saved["hubert", "pre_ln"]["fairseq"])
    assert payload["cfg"]["model"]["_name"] == "hubert"
    assert payload["cfg"]["model"]["extractor_mode"] == "layer_norm"  # an enum node, back to its value
    assert payload["cfg"]["task"]["normalize"] is True
    assert payload["cfg"]["task"]["labels"] == ["km"]
    assert payload["task_state"]["dictionaries"][0]["symbols"][4:] == ["0", "1", "2"]
    args = load_pickled(saved["wav2vec2", "post_ln"]["fairseq_args"])["args"]
    assert isinstance(args, dict) and args["arch"] == "wav2vec2" and args["encoder_layers"] == tm.LAYERS

    def walk(obj):
        assert not isinstance(obj, StandIn), obj
        if isinstance(obj, dict):
            for value in obj.values():
                walk(value)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                walk(value)

    walk(payload)


@pytest.mark.parametrize("family", ["wav2vec2", "hubert"])
def test_fine_tuned_fairseq_checkpoint(saved, family, tmp_path):
    """A CTC fine-tuned .pt nests the backbone under w2v_encoder.w2v_model. and its config under w2v_args."""
    pre = load_pickled(saved[family, "pre_ln"]["fairseq"])
    state = {f"w2v_encoder.w2v_model.{k}": v for k, v in pre["model"].items()}
    state["w2v_encoder.proj.weight"] = torch.zeros(5, tm.DIM)  # the CTC head, dropped
    torch.save({"args": None, "model": state, "cfg": {
        "model": {"_name": f"{'wav2vec' if family == 'wav2vec2' else 'hubert'}_ctc", "w2v_path": "/x.pt",
                  "w2v_args": {"model": pre["cfg"]["model"], "task": pre["cfg"]["task"]}},
        "task": {"_name": "audio_finetuning", "normalize": True}}}, tmp_path / "ft.pt")
    upstream = CLASSES[family].create(ckpt=tmp_path / "ft.pt")
    assert upstream.normalize is True
    wav = _wav(4000, seed=6)
    hf = CLASSES[family].create(ckpt=saved[family, "pre_ln"]["hf"])
    hf.normalize_eps = checkpoints.FAIRSEQ_NORM_EPS  # fairseq's layer_norm eps, not transformers'
    expected, _ = _run(hf, wav, [4000])
    assert (_run(upstream, wav, [4000])[0] - expected).abs().max().item() <= 1e-5
    other = "hubert" if family == "wav2vec2" else "wav2vec2"
    with pytest.raises(CheckpointError, match=f"holds a {family} model"):
        CLASSES[other].create(ckpt=tmp_path / "ft.pt")


@pytest.mark.parametrize("variant", tm.VARIANTS)
def test_num_frames_equals_output_length(saved, variant):
    upstream = ssl.Wav2Vec2.create(ckpt=saved["wav2vec2", variant]["torchaudio"])
    assert (upstream.spec.window, upstream.spec.hop, upstream.spec.frame_rate) == (400, 320, 50.0)
    wav = _wav(5001)
    # every frame boundary up to 5,000 samples, one sample either side: where an off-by-one would show
    boundaries = sorted({400 + 320 * k + d for k in range(15) for d in (-1, 0, 1)} - {399} | {5000})
    with torch.no_grad():
        for n in boundaries:
            frames = upstream.hidden_states(wav[:, :n], torch.tensor([n])).shape[1]
            assert frames == upstream.spec.num_frames(n) == (n - 400) // 320 + 1, n


@pytest.mark.parametrize("family", tm.FAMILIES)
def test_padded_batch_equals_each_utterance_alone(saved, family):
    upstream = CLASSES[family].create(ckpt=saved[family, "pre_ln"]["hf"])
    assert upstream.spec.pad_safe
    lengths = [7000, 3333, 400, 399]
    batch = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        batch[i, :n] = _wav(n, seed=10 + i)
    hidden, frames = _run(upstream, batch, lengths)
    assert frames.tolist() == [upstream.spec.num_frames(n) for n in lengths]
    for i, n in enumerate(lengths):
        alone, _ = _run(upstream, batch[i:i + 1, :n], [n])
        valid = int(frames[i])
        assert alone.shape[1] == valid
        assert torch.isfinite(hidden[i, :valid]).all()
        if valid:
            assert (hidden[i, :valid] - alone[0]).abs().max().item() <= 1e-5, (family, n)


@pytest.mark.parametrize("family", tm.FAMILIES)
def test_equal_length_batch_of_a_group_norm_model(saved, family):
    upstream = CLASSES[family].create(ckpt=saved[family, "post_ln"]["hf"])
    assert not upstream.spec.pad_safe  # group norm sees padding: equal lengths only
    batch = torch.cat([_wav(4000, seed=s) for s in (4, 5)])
    hidden, _ = _run(upstream, batch, [4000, 4000])
    for i in range(2):
        alone, _ = _run(upstream, batch[i:i + 1], [4000])
        assert (hidden[i] - alone[0]).abs().max().item() <= 1e-5


@pytest.mark.parametrize("family", tm.FAMILIES)
def test_short_inputs(family):
    with pytest.warns(UserWarning, match="RANDOM WEIGHTS"):
        upstream = CLASSES[family].create(random_init="tiny", seed=0)
    for n in (1, 200, 399):
        hidden, frames = _run(upstream, _wav(n), [n])
        assert hidden.shape == (1, 0, 3, 32) and frames.tolist() == [0]
    hidden, frames = _run(upstream, _wav(400), [400])
    assert hidden.shape == (1, 1, 3, 32) and frames.tolist() == [1]
    assert torch.isfinite(hidden).all()
    batch = torch.zeros(2, 400)
    batch[0] = _wav(400)[0]
    hidden, frames = _run(upstream, batch, [400, 100])
    assert hidden.shape == (2, 1, 3, 32) and frames.tolist() == [1, 0]


@pytest.mark.parametrize("family", tm.FAMILIES)
def test_random_init_is_seeded_and_loud(family):
    rng_before = torch.get_rng_state()
    with pytest.warns(UserWarning, match="RANDOM WEIGHTS"):
        first = CLASSES[family].create(random_init="tiny", seed=7)
        second = CLASSES[family].create(random_init="tiny", seed=7)
        other = CLASSES[family].create(random_init="tiny", seed=8)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's RNG is left alone
    a, b, c = (u.model.state_dict() for u in (first, second, other))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    identity = first.identity()
    assert (identity["ckpt"], identity["ckpt_sha256"], identity["random_init"], identity["seed"]) == \
        (None, "random-init", "tiny", 7)
    assert identity["format"] == "random-init"
    json.dumps(identity)
    assert (first.spec.num_layers, first.spec.dim, first.spec.pad_safe) == (3, 32, False)


def test_random_init_base_and_large_presets():
    with pytest.warns(UserWarning, match="RANDOM WEIGHTS"):
        base = ssl.Hubert.create(random_init="base", seed=0)
    assert (base.spec.num_layers, base.spec.dim, base.spec.pad_safe, base.normalize) == (13, 768, False, False)
    for family in tm.FAMILIES:
        config, normalize = checkpoints.preset_config(family, "large")
        assert (config["encoder_num_layers"], config["encoder_embed_dim"], config["encoder_layer_norm_first"]) == \
            (24, 1024, True)
        assert normalize and config["extractor_mode"] == "layer_norm"
        assert config["extractor_conv_bias"] is (family == "wav2vec2")  # Large LV-60k has conv bias


def test_create_needs_ckpt_or_random_init(saved, tmp_path):
    for cls in CLASSES.values():
        with pytest.raises(ConfigError, match="--random-init"):
            cls.create()
    with pytest.raises(ConfigError, match="huge"):
        ssl.WavLM.create(random_init="huge")
    with pytest.raises(ConfigError, match="not both"):
        ssl.WavLM.create(ckpt=saved["wavlm", "post_ln"]["hf"], random_init="tiny")
    with pytest.raises(ConfigError, match="unknown option"):
        ssl.WavLM.create(random_init="tiny", options={"layers": 3})
    with pytest.raises(ConfigError, match="normalize"):
        ssl.WavLM.create(random_init="tiny", options={"normalize": "yes"})
    forced = ssl.WavLM.create(ckpt=saved["wavlm", "post_ln"]["hf"], options={"normalize": True})
    assert forced.normalize is True and forced.identity()["options"] == {"normalize": True}


def test_identity_of_a_checkpoint(saved):
    path = saved["wavlm", "pre_ln"]["fairseq"]
    identity = ssl.WavLM.create(ckpt=path).identity()
    assert identity["ckpt"] == str(path) and identity["ckpt_sha256"] == file_sha256(path)
    assert (identity["name"], identity["format"], identity["normalize"]) == ("wavlm", "fairseq", True)
    assert identity["config"]["encoder_num_buckets"] == tm.BUCKETS
    assert json.loads(json.dumps(identity)) == identity
    assert "preprocessor" not in identity  # only Hugging Face folders have one
    folder = saved["hubert", "post_ln"]["hf"]
    identity = ssl.Hubert.create(ckpt=folder).identity()
    assert identity["ckpt_sha256"] == file_sha256(folder)
    assert identity["preprocessor"] == {"do_normalize": False, "return_attention_mask": False}
    assert identity["normalize"] is False


def test_bad_checkpoints_raise_checkpoint_error(saved, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(4096))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(saved["hubert", "post_ln"]["fairseq"].read_bytes()[:2000])
    unknown = tmp_path / "unknown.pt"
    torch.save({"weights": {"a": torch.zeros(2)}}, unknown)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    bert = tmp_path / "bert"
    shutil.copytree(saved["wav2vec2", "post_ln"]["hf"], bert)
    (bert / "config.json").write_text(json.dumps({**json.loads((bert / "config.json").read_text()),
                                                  "model_type": "bert"}))
    cases = [(garbage, "not a readable|cannot load"), (truncated, "not a readable|cannot load"),
             (unknown, "unknown checkpoint format"), (empty_dir, "config.json"), (bert, "model_type 'bert'"),
             (tmp_path / "missing.pt", "does not exist")]
    for name, text, message in (("json", "{do_normalize: true", "not valid JSON"),
                                ("list", "[]", "expected a JSON object"),
                                ("flag", '{"do_normalize": "yes"}', "do_normalize must be true or false"),
                                ("mask", '{"return_attention_mask": 1}', "return_attention_mask must be"),
                                ("rate", '{"sampling_rate": 8000}', "sampling_rate 8000")):
        folder = _with_preprocessor(saved["wav2vec2", "post_ln"]["hf"], tmp_path / f"pre_{name}")
        (folder / checkpoints.PREPROCESSOR_FILE).write_text(text)
        cases.append((folder, f"{checkpoints.PREPROCESSOR_FILE}: {message}"))
    for path, message in cases:
        with pytest.raises(CheckpointError, match=message):
            ssl.Wav2Vec2.create(ckpt=path)


def test_missing_parameter_and_wrong_shape(saved, tmp_path):
    payload = torch.load(saved["hubert", "post_ln"]["torchaudio"], weights_only=True)
    del payload["state_dict"]["encoder.transformer.layers.1.final_layer_norm.bias"]
    torch.save(payload, tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="1 parameters missing.*final_layer_norm"):
        ssl.Hubert.create(ckpt=tmp_path / "missing.pt")
    payload = torch.load(saved["hubert", "post_ln"]["torchaudio"], weights_only=True)
    payload["config"]["encoder_ff_interm_features"] = 48
    torch.save(payload, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match="shape"):
        ssl.Hubert.create(ckpt=tmp_path / "shape.pt")


@pytest.mark.parametrize(("family", "fmt", "wrong"), [
    ("hubert", "fairseq", "wavlm"), ("hubert", "fairseq", "wav2vec2"), ("wavlm", "fairseq", "hubert"),
    ("wav2vec2", "fairseq_args", "hubert"), ("wavlm", "hf", "hubert"), ("hubert", "hf", "wavlm"),
    ("wav2vec2", "torchaudio", "wavlm"), ("wavlm", "torchaudio_st", "wav2vec2"),
])
def test_family_mismatch(saved, family, fmt, wrong):
    with pytest.raises(CheckpointError, match=f"holds a {family} model, but -u {wrong}"):
        CLASSES[wrong].create(ckpt=saved[family, "post_ln"][fmt])


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("zip_format", [True, False])
def test_code_in_a_pickle_is_refused_not_run(tmp_path, zip_format):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"cfg": {}, "model": {"x": _Evil(marker)}}, path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(CheckpointError, match="system"):
        ssl.Wav2Vec2.create(ckpt=path)
    assert not marker.exists()


def test_conv_layers_parser():
    standard = "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] * 2"
    assert parse_conv_layers(standard, "t") == [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2
    assert parse_conv_layers("[(16, 3, 2)] * (1 + 1)", "t") == [(16, 3, 2)] * 2
    rejected = ["__import__('os').system('x')", "[(512, 10, 5)] ** 2", "[(a, 1, 1)]", "[(512, 10, 5)] * 100000",
                "[(-1, 2, 2)]", "[(1, 2)]", "[]", "[(1.5, 2, 2)]", "[(True, 2, 2)]", "(lambda: 1)()",
                "[(1, 2, 2)] + 3", "[(512, 10, 5)", "[x for x in ()]", "{'a': 1}"]
    for text in rejected:
        with pytest.raises(CheckpointError, match="conv_feature_layers"):
            parse_conv_layers(text, "t")
