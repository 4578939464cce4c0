"""Task configs and s3prl-style ``-o`` overrides: literals only, unknown keys fail with a suggestion."""

from __future__ import annotations

import pytest

from superb.errors import ConfigError
from superb.registry import TASKS
from superb.testing.cli import one_error_line, run_superb_here
from superb.train.config import Config, build, default_config_path, load_config, load_yaml, parse_overrides


def test_parse_overrides_literals_and_nesting():
    parsed = parse_overrides("config.optimizer.lr=1.0e-3,,config.runner.total_steps=2000,,"
                             "config.runner.eval_dataloaders=[dev, test],,config.optimizer.name=AdamW,,"
                             "data.crop_seconds=null")
    assert parsed == [(["optimizer", "lr"], 1.0e-3), (["runner", "total_steps"], 2000),
                      (["runner", "eval_dataloaders"], ["dev", "test"]), (["optimizer", "name"], "AdamW"),
                      (["data", "crop_seconds"], None)]


def test_override_values_are_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    parsed = parse_overrides(f"config.optimizer.name=__import__('os').system('touch {marker}')")
    assert parsed[0][1].startswith("__import__")  # kept as text
    assert not marker.exists()
    with pytest.raises(ConfigError, match="optimizer.name.*not one of|must be"):
        from superb.train.optimizers import make_optimizer

        text = f"config.optimizer.name=__import__('os').system('touch {marker}')"
        config = load_config(default_config_path("ks"), text)
        make_optimizer([], config.optimizer)
    assert not marker.exists()


@pytest.mark.parametrize("task", ["ks", "sid", "ic", "er", "pr", "asr", "sf", "example"])
def test_every_shipped_config_loads(task):
    config = load_config(default_config_path(task))
    assert config.runner.total_steps > 0 and config.optimizer.lr > 0
    assert TASKS.canonical(task) == task


def test_shipped_defaults_follow_s3prl():
    ks = load_config(default_config_path("ks"))
    assert (ks.runner.total_steps, ks.data.batch_size, ks.runner.gradient_accumulate_steps) == (200_000, 32, 1)
    assert (ks.optimizer.name, ks.optimizer.lr) == ("TorchAdam", 1e-4)
    assert (ks.runner.eval_step, ks.runner.save_step) == (5000, 1000)
    sid = load_config(default_config_path("sid"))
    assert (sid.data.batch_size, sid.runner.gradient_accumulate_steps, sid.data.crop_seconds) == (8, 4, 8)
    er = load_config(default_config_path("er"))
    assert (er.runner.total_steps, er.data.batch_size, er.runner.gradient_accumulate_steps) == (30_000, 4, 8)
    assert load_config(default_config_path("ic")).runner.save_step == 250


def test_overrides_apply_and_are_type_checked():
    config = load_config(default_config_path("ks"), "config.optimizer.lr=1e-2,,config.runner.total_steps=5")
    assert config.optimizer.lr == 1e-2 and config.runner.total_steps == 5
    with pytest.raises(ConfigError, match="must be an integer"):
        load_config(default_config_path("ks"), "config.runner.total_steps=five")
    with pytest.raises(ConfigError, match="must be true or false"):
        load_config(default_config_path("ks"), "config.data.balanced=3")


def test_a_value_of_several_types_takes_the_first_it_fits():
    """``data.lexicon`` is one file or a list of them (s3prl's libriphone reads two)."""
    assert load_config(default_config_path("pr"), "config.data.lexicon=a.txt").data.lexicon == "a.txt"
    assert load_config(default_config_path("pr"), "config.data.lexicon=[a.txt, b.txt]").data.lexicon == ["a.txt",
                                                                                                          "b.txt"]
    with pytest.raises(ConfigError, match="lexicon must be str or list\\[str\\], got 3"):
        load_config(default_config_path("pr"), "config.data.lexicon=3")


def test_unknown_keys_fail_with_a_suggestion():
    with pytest.raises(ConfigError, match="unknown key 'totl_steps'. Did you mean 'total_steps'"):
        load_config(default_config_path("ks"), "config.runner.totl_steps=5")
    with pytest.raises(ConfigError, match="unknown key 'optimiser'. Did you mean 'optimizer'"):
        load_config(default_config_path("ks"), "config.optimiser.lr=5")
    with pytest.raises(ConfigError, match="expected config.BLOCK.KEY=VALUE"):
        parse_overrides("config.runner.total_steps")


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("runner: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_yaml(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("runner:\n  total_step: 3\n")
    with pytest.raises(ConfigError, match="typo.yaml: config.runner: unknown key 'total_step'"):
        load_config(typo)
    assert build(Config, {}, "empty").runner.total_steps == 200_000


@pytest.mark.parametrize(("override", "problem"), [
    ("optimizer.lr=.nan", "must be a finite number >= 0, got nan"),
    ("optimizer.lr=nan", "must be a finite number >= 0, got nan"),  # the string, as float() reads it
    ("optimizer.lr=-1", "must be a finite number >= 0, got -1.0"),
    ("optimizer.lr=.inf", "must be a finite number >= 0, got inf"),
    ("optimizer.weight_decay=-0.1", "must be a finite number >= 0, got -0.1"),
    ("optimizer.warmup_steps=-5", "must be an integer >= 0, got -5"),
    ("runner.total_steps=0", "must be an integer >= 1, got 0"),
    ("runner.gradient_accumulate_steps=0", "must be an integer >= 1, got 0"),
    ("runner.eval_step=0", "must be an integer >= 1, got 0"),
    ("runner.max_keep=-1", "must be an integer >= 0, got -1"),
    ("runner.gradient_clipping=0", "must be a finite number > 0, got 0.0"),
    ("data.batch_size=0", "must be an integer >= 1, got 0"),
    ("data.eval_batch_size=-2", "must be an integer >= 1, got -2"),
    ("data.crop_seconds=0", "must be a finite number > 0, got 0.0"),
    ("data.fold=6", "must be an integer in [1, 5], got 6"),
    ("data.dev_ratio=1", "must be a finite number in (0, 1), got 1.0"),
    ("model.rnn_dropout=1", "must be a finite number in [0, 1), got 1.0"),
    ("specaug.adaptive_size_ratio=1.5", "must be a finite number in [0, 1], got 1.5"),
    ("decode.lm_weight=-.inf", "must be a finite number, got -inf"),  # no Range: finite only
    ("runner.eval_dataloaders=[valid]", "has 'valid', which is not one of train, dev, test"),
    ("optimizer.scheduler=cosine", "'cosine' is not one of constant, linear_schedule_with_warmup"),
    ("optimizer.lr=fast", "must be a number, got 'fast'"),
    ("runner.total_steps=1.5", "must be an integer, got 1.5"),
])
def test_config_values_are_range_checked_naming_the_key(override, problem):
    """Each field's declared range (or choices) holds; the error names the file, the key and the value."""
    with pytest.raises(ConfigError) as caught:
        load_config(default_config_path("ks"), f"config.{override}")
    key = override.partition("=")[0]
    assert str(caught.value) == f"{default_config_path('ks')}: config.{key} {problem}"


def test_the_allowed_edges_load():
    edges = ("config.runner.max_keep=0,,config.optimizer.weight_decay=0,,config.optimizer.eps=0,,"
             "config.data.num_workers=0,,config.data.crop_seconds=null,,config.data.fold=5,,config.optimizer.lr=0,,"
             "config.model.rnn_dropout=0,,config.runner.total_steps=1,,config.decode.word_score=-3")
    config = load_config(default_config_path("ks"), edges)
    assert (config.runner.max_keep, config.data.fold, config.data.crop_seconds) == (0, 5, None)


@pytest.mark.parametrize(("override", "message"), [
    ("config.optimizer.lr=.nan", "config.optimizer.lr must be a finite number >= 0, got nan"),
    ("config.data.batch_size=eight", "config.data.batch_size must be an integer, got 'eight'"),
    (None, "no feature store here"),  # valid config, a check after it fails: still no expdir
])
def test_a_refused_fit_leaves_no_expdir(tmp_path, override, message):
    """Refused before any data is read (the store path does not even exist), through the command line (run in
    this process: no start-up per case); the other keys' checks run on the same path (``resolve_config``),
    tested above without a command each."""
    expdir = tmp_path / "runs" / "ks"
    result = run_superb_here("fit", "-d", "ks", "--features", str(tmp_path / "stores"), "-p", str(expdir),
                        *(["-o", override] if override else []))
    line = one_error_line(result)
    assert message in line and (override is None or line == f"error: task 'ks': {message}")
    assert not (tmp_path / "runs").exists()


def test_learning_rate_schedules():
    from superb.train.config import OptimizerConfig
    from superb.train.trainer import lr_factor

    s3prl = OptimizerConfig(scheduler="linear_schedule_with_warmup", warmup_steps=10)
    assert [lr_factor(s, s3prl, 110) for s in (0, 5, 10, 60, 110, 120)] == [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    constant = OptimizerConfig()
    assert lr_factor(0, constant, 100) == lr_factor(99, constant, 100) == 1.0
    assert load_config(default_config_path("example")).optimizer.scheduler == "linear_schedule_with_warmup"


def test_asv_optimizer_is_the_one_s3prls_config_builds():
    """s3prl's sv_voxceleb1 block goes through ``get_TorchOptim``: ``getattr(torch.optim, torch_optim_name)``
    called on every trainable parameter with the remaining keys, so torch's defaults fill the rest
    (AdamW's weight decay 0.01 among them)."""
    import torch

    from superb.train.optimizers import make_optimizer

    s3prl_block = {"name": "TorchOptim", "torch_optim_name": "AdamW", "lr": 1.0e-4}  # sv_voxceleb1/config.yaml
    kwargs = {k: v for k, v in s3prl_block.items() if k not in ("name", "torch_optim_name")}
    params = list(torch.nn.Linear(3, 2).parameters())
    theirs = getattr(torch.optim, s3prl_block["torch_optim_name"])(params, **kwargs)
    ours = make_optimizer(params, load_config(default_config_path("asv")).optimizer)

    def groups(optimizer):
        return [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]

    assert type(ours) is type(theirs) and groups(ours) == groups(theirs)
    assert [g["params"] for g in ours.param_groups] == [params] and groups(ours)[0]["weight_decay"] == 0.01


# s3prl 0.4.18 downstream/ctc/snips.yaml's specaug block as written (downstream/asr/config.yaml has the same)
S3PRL_SPECAUG = {"adaptive": False, "adaptive_number_ratio": 0.04, "adaptive_size_ratio": 0.04,
                 "max_n_time_masks": 20, "apply_time_warp": True, "apply_time_mask": True, "apply_freq_mask": True,
                 "time_warp_window": 5, "time_mask_width_range": [0, 40], "freq_mask_width_range": [0, 50],
                 "num_freq_mask": 4, "num_time_mask": 2}


@pytest.mark.parametrize("task", ["sf", "asr"])
def test_specaug_blocks_are_s3prls_key_by_key(task):
    """Our keys in s3prl's names: a part switched off is 0 masks here, and a width ``w`` draws from
    ``[0, w)`` as s3prl's range ``[0, w]`` (``torch.randint``'s open end)."""
    cfg = load_config(default_config_path(task)).specaug
    ours = {"adaptive": cfg.adaptive, "adaptive_number_ratio": cfg.adaptive_number_ratio,
            "adaptive_size_ratio": cfg.adaptive_size_ratio, "max_n_time_masks": cfg.max_n_time_masks,
            "apply_time_warp": cfg.time_warp, "apply_time_mask": cfg.num_time_mask > 0,
            "apply_freq_mask": cfg.num_freq_mask > 0, "time_warp_window": cfg.time_warp_window,
            "time_mask_width_range": [0, cfg.time_mask_width], "freq_mask_width_range": [0, cfg.freq_mask_width],
            "num_freq_mask": cfg.num_freq_mask, "num_time_mask": cfg.num_time_mask}
    assert cfg.enabled and ours == S3PRL_SPECAUG


def test_dev_sampling_names_and_tasks_are_checked():
    from superb.train.runner import FitArgs, build_run

    assert load_config(default_config_path("ks")).data.dev_sampling == "full"
    with pytest.raises(ConfigError, match="data.dev_sampling 'balanced' is not one of full, s3prl_balanced"):
        load_config(default_config_path("ks"), "config.data.dev_sampling=balanced")
    config = load_config(default_config_path("sid"), "config.data.dev_sampling=s3prl_balanced")
    with pytest.raises(ConfigError, match="s3prl's dev protocol for ks only; s3prl scores task 'sid' on its whole"):
        build_run(FitArgs(task="sid", features="/nonexistent"), config)
