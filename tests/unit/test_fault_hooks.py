"""The training test hooks read from the environment: SENTIMENT_RAY_FAIL_AT_STEP and SENTIMENT_RAY_HOLD_AT_STEP."""

import pytest

from sentiment_ray.errors import ConfigError
from sentiment_ray.training.callbacks import FailAtStepCallback, HoldAtStepCallback, fault_injection
from sentiment_ray.training.driver import _fault_injection_settings


def test_each_hook_becomes_its_callback(monkeypatch, tmp_path):
    assert _fault_injection_settings(tmp_path) == {} and fault_injection({}) == []
    monkeypatch.setenv("SENTIMENT_RAY_FAIL_AT_STEP", "7")
    monkeypatch.setenv("SENTIMENT_RAY_HOLD_AT_STEP", "5")
    settings = _fault_injection_settings(tmp_path)
    assert settings == {"fail_at_step": 7, "fail_marker": str(tmp_path / "fault_injected_at_step_7"), "hold_at_step": 5}
    fail, hold = fault_injection(settings)
    assert isinstance(fail, FailAtStepCallback) and fail.step == 7
    assert isinstance(hold, HoldAtStepCallback) and hold.step == 5


@pytest.mark.parametrize("value", ["0", "-3", "five"])
def test_a_bad_step_names_the_variable(monkeypatch, tmp_path, value):
    monkeypatch.setenv("SENTIMENT_RAY_HOLD_AT_STEP", value)
    with pytest.raises(ConfigError, match=f"SENTIMENT_RAY_HOLD_AT_STEP='{value}' must be a positive step number"):
        _fault_injection_settings(tmp_path)
