"""The [judge] section: defaults, validation, TOML values."""

from __future__ import annotations

import pytest

from selfalign.config import ConfigError, build
from selfalign.judge.config import JudgeConfig
from selfalign.judge.rubrics import PREFERENCES


def test_defaults():
    cfg = JudgeConfig()
    assert cfg.preferences == list(PREFERENCES)
    assert cfg.temperature == 0 and cfg.rounds == 1 and not cfg.swap
    params = cfg.sampling()
    assert params.temperature == 0 and params.n == 1 and params.max_tokens == cfg.max_tokens
    assert cfg.retry_sampling().temperature == cfg.retry_temperature
    assert JudgeConfig(swap=True).rounds == 2


def test_toml_values_are_checked():
    cfg = build(JudgeConfig, "judge", {"preferences": ["readability"], "swap": True})
    assert cfg.preferences == ["readability"] and cfg.swap
    with pytest.raises(ConfigError, match="judge.preferences = 'speed' is not allowed"):
        build(JudgeConfig, "judge", {"preferences": ["speed"]})
    with pytest.raises(ConfigError, match="swap_order"):
        build(JudgeConfig, "judge", {"swap_order": "sideways"})
    with pytest.raises(ConfigError, match="max_responses must be at least 1"):
        build(JudgeConfig, "judge", {"max_responses": 0})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"preferences": []}, "preferences is empty"),
        ({"preferences": ["readability", "readability"]}, "twice"),
        ({"temperature": -1.0}, "temperature"),
        ({"retry_temperature": -0.1}, "retry_temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"max_response_chars": -1}, "max_response_chars"),
        ({"repetition_penalty": 0.0}, "repetition_penalty"),
    ],
)
def test_bad_values_say_what_is_allowed(values, message):
    with pytest.raises(ValueError, match=message):
        JudgeConfig(**values)


def test_id_params_change_with_what_changes_a_judgment():
    base = JudgeConfig().id_params()
    assert JudgeConfig(swap=True).id_params() != base
    assert JudgeConfig(max_tokens=100).id_params() != base
    # swap_order means nothing without swap, so it does not change ids then.
    assert JudgeConfig(swap_order="shuffle").id_params() == base
    # batch size and limit change how work is split, not what a judgment is.
    assert JudgeConfig(batch_size=1, limit=3).id_params() == base
