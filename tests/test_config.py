"""Typed configuration: TOML values, CLI overrides, and errors that name the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from selfalign.cli_support import config_options, take_config
from selfalign.config import ConfigError, build, check_sections, load_toml, resolve, save_resolved
from selfalign.store import RunDir


@dataclass
class DemoConfig:
    """A config shaped like the stages' configs."""

    batch_size: int = field(default=8, metadata={"help": "Records per batch."})
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature."})
    backend: str = field(
        default="docker", metadata={"help": "Sandbox backend.", "choices": ("docker", "bwrap")}
    )
    stop: list[str] = field(default_factory=lambda: ["\n\n"], metadata={"help": "Stops."})
    weights: dict[str, float] = field(default_factory=dict, metadata={"help": "Weights."})
    limit: int | None = field(default=None, metadata={"help": "At most this many."})
    methods: bool = field(default=False, metadata={"help": "Include methods."})

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


def test_unknown_key_names_the_key_and_the_allowed_ones() -> None:
    with pytest.raises(ConfigError) as info:
        build(DemoConfig, "demo", {"batch_sise": 3})
    message = str(info.value)
    assert "demo.batch_sise" in message
    assert "batch_size" in message and "temperature" in message


def test_bad_choice_lists_allowed_values() -> None:
    expected = r"demo.backend = 'podman' is not allowed; .*docker, bwrap"
    with pytest.raises(ConfigError, match=expected):
        build(DemoConfig, "demo", {"backend": "podman"})


def test_wrong_type_and_post_init_errors() -> None:
    with pytest.raises(ConfigError, match="demo.batch_size: expected a whole number"):
        build(DemoConfig, "demo", {"batch_size": "many"})
    with pytest.raises(ConfigError, match="batch_size must be at least 1"):
        build(DemoConfig, "demo", {"batch_size": 0})
    with pytest.raises(ConfigError, match=r"demo.stop\[1\]: expected a string"):
        build(DemoConfig, "demo", {"stop": ["a", 3]})


def test_int_widens_to_float_and_optional_accepts_value() -> None:
    cfg = build(DemoConfig, "demo", {"temperature": 1, "limit": 5, "weights": {"a": 1}})
    assert cfg.temperature == 1.0 and isinstance(cfg.temperature, float)
    assert cfg.limit == 5 and cfg.weights == {"a": 1.0}


def test_file_then_cli_override(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[demo]\nbatch_size = 4\ntemperature = 0.2\n')
    values = load_toml(path)
    cfg = resolve(DemoConfig, "demo", values, {"temperature": 0.9, "batch_size": None})
    assert cfg.batch_size == 4 and cfg.temperature == 0.9


def test_unknown_section_and_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown section \[sede\]"):
        check_sections({"sede": {}}, {"seeds": DemoConfig})
    with pytest.raises(ConfigError, match="does not exist"):
        load_toml(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[demo\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(broken)


def test_resolved_config_is_saved_to_the_run(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    save_resolved(run, {"demo": DemoConfig(batch_size=2)})
    save_resolved(run, {"other": DemoConfig(backend="bwrap")})
    saved = load_toml(run.config_path)
    assert saved["demo"]["batch_size"] == 2
    assert saved["other"]["backend"] == "bwrap"
    assert "limit" not in saved["demo"]  # None has no TOML form


def test_generated_cli_options_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[demo]\nbatch_size = 4\nstop = ["x"]\n')
    seen: dict[str, DemoConfig] = {}

    @click.command()
    @config_options(DemoConfig)
    def command(**options: object) -> None:
        seen["cfg"] = take_config(DemoConfig, "demo", dict(options), load_toml(path))

    runner = CliRunner()
    result = runner.invoke(command, ["--temperature", "0.1", "--stop", "a,b", "--methods"])
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert (cfg.batch_size, cfg.temperature, cfg.stop, cfg.methods) == (4, 0.1, ["a", "b"], True)

    result = runner.invoke(command, ["--backend", "podman"])
    assert result.exit_code == 2 and "podman" in result.output

    help_text = runner.invoke(command, ["--help"]).output
    assert "Records per batch." in help_text and "[default: 8]" in help_text
    assert "--weights" not in help_text  # tables are set in the TOML file only


@pytest.mark.parametrize("path", sorted(Path(__file__).parent.parent.glob("configs/*.toml")))
def test_shipped_configs_are_valid(path: Path) -> None:
    # A typo in configs/demo.toml would otherwise surface minutes into `make demo`.
    from selfalign.cli_support import read_config_file
    from selfalign.evaluate.cli import HUMANEVAL
    from selfalign.pipeline import resolve_section, sections
    from selfalign.stage import Section

    values = read_config_file(path)  # an unknown section fails here
    checked = 0
    for name, cls in sections().items():
        if cls is not None and name.split(".")[0] in values:
            resolve_section(Section(name, cls), values)
            checked += 1
    resolve_section(HUMANEVAL, values)
    from selfalign.evaluate.arena import ArenaConfig

    resolve_section(Section("eval.arena", ArenaConfig), values)
    assert checked >= 4


def test_the_judge_model_starts_as_the_run_model(tmp_path: Path) -> None:
    """[judge.model] inherits what it does not set from [model]; its own keys win."""
    from selfalign.judge.stage import JUDGE_MODEL
    from selfalign.llm.config import ModelConfig
    from selfalign.pipeline import resolve_section

    values = {"model": {"backend": "openai", "model": "coder", "base_url": "http://a:1/v1"}}
    model = ModelConfig(backend="openai", model="coder", base_url="http://a:1/v1")
    assert resolve_section(JUDGE_MODEL, values, resolved={"model": model}) == model
    # Without a resolved [model], the file's [model] is the base.
    assert resolve_section(JUDGE_MODEL, values).model == "coder"
    values["judge"] = {"model": {"model": "big-judge", "base_url": "http://b:2/v1"}}
    judge = resolve_section(JUDGE_MODEL, values, resolved={"model": model})
    assert (judge.backend, judge.model, judge.base_url) == ("openai", "big-judge", "http://b:2/v1")
