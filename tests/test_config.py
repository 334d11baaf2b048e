"""Settings validation: every bad value is reported with the parameter, the value and the fix."""

from __future__ import annotations

import pytest

from rescunet_ij import api
from rescunet_ij.config import (
    ModelConfig,
    PropagateConfig,
    TrainConfig,
    make_config,
    nearest_valid_sizes,
)
from rescunet_ij.errors import ConfigError


@pytest.mark.parametrize(
    "n, expected", [(50, (48, 64)), (64, (64, 64)), (8, (16, 16)), (17, (16, 32))]
)
def test_nearest_valid_sizes(n, expected):
    assert nearest_valid_sizes(n) == expected


def test_input_size_errors_name_nearest_valid_sizes():
    with pytest.raises(ConfigError, match="use 48 or 64"):
        api.train_config(input_size=50)
    with pytest.raises(ConfigError, match="use 16"):
        api.train_config(input_size=8)
    assert api.train_config(input_size="64x48").model.input_size == (64, 48)


@pytest.mark.parametrize(
    "params, needle",
    [
        (dict(concatenation_level=5), "concatenation level"),
        (dict(concatenation_level=-1), "concatenation level"),
        (dict(learning_rate=0), "learning rate"),
        (dict(batch_size=0), "batch size"),
        (dict(epochs=0), "epochs"),
        (dict(validation_fraction=1.0), "validation fraction"),
        (dict(erosion_width=-2), "erosion width"),
        (dict(device="gpu"), "device"),
        (dict(subimage_size=4), "subimage size"),
    ],
)
def test_bad_training_parameters(params, needle):
    with pytest.raises(ConfigError, match=needle):
        api.train_config(**params)


def test_unknown_settings_are_rejected():
    with pytest.raises(ConfigError, match="Extra inputs"):
        make_config(TrainConfig, learning_rat=0.1)


def test_defaults_match_the_seed():
    cfg = TrainConfig()
    assert cfg.model == ModelConfig(input_size=(64, 64), concatenation_level=1, base_filters=64)
    assert (
        cfg.erosion_width == 0
        and cfg.validation_fraction == 0.1
        and cfg.early_stopping_patience == 5
    )
    assert cfg.window_size == (64, 64)  # no rescaling by default
    assert api.train_config(subimage_size=96).window_size == (96, 96)
    assert PropagateConfig().threshold == 0.5


def test_config_json_round_trip():
    cfg = api.train_config(input_size=32, epochs=3, normalization="max")
    again = TrainConfig.model_validate_json(cfg.model_dump_json())
    assert again == cfg
