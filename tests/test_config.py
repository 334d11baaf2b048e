"""Settings validation: every bad value is reported with the parameter, the value and the fix."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rescunet_ij import api
from rescunet_ij.config import (
    ModelConfig,
    NormalizationConfig,
    PropagateConfig,
    TrainConfig,
    format_validation_error,
    make_config,
    nearest_valid_sizes,
    validation_problems,
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


# ----------------------------------------------------------------------------- upper bounds
# Absurd sizes must be refused up front, naming the field and the allowed range, instead of failing
# later inside torch/numpy (storage size overflow, "array is too big", 186 GiB requested).


@pytest.mark.parametrize(
    "params, field, allowed",
    [
        (dict(input_size=10**9), "input size", "16..1024, a multiple of 16"),
        (dict(input_size=4096), "input size", "16..1024, a multiple of 16"),
        (dict(input_size="1040x64"), "input size", "16..1024, a multiple of 16"),
        (dict(subimage_size=10**9), "subimage size", "8..4096 per side"),
        (dict(subimage_size=100_000), "subimage size", "8..4096 per side"),
        (dict(subimage_size=(64, 4097)), "subimage size", "8..4096 per side"),
        (dict(batch_size=10**6), "batch size", "1..4096"),
        (dict(epochs=10**9), "epochs", "1..100000"),
        (dict(base_filters=1024), "base filters", "4..128"),
        (dict(in_channels=100), "in channels", "1..4"),
        (dict(early_stopping_patience=10**7), "early stopping patience", "1..100000"),
        (dict(lr_plateau_patience=10**7), "lr plateau patience", "1..100000"),
        (dict(weight_w0=1e9), "weight w0", "0.0..1000.0"),
        (dict(weight_sigma=1e9), "weight sigma", "> 0.0 and <= 1000.0"),
        (dict(num_workers=1000), "num workers", "0..64"),
        (dict(seed=2**64), "seed", "0..18446744073709551615"),
        (dict(learning_rate=5.0), "learning rate", "> 0 and <= 1.0"),
    ],
)
def test_out_of_range_training_settings_name_field_and_range(params, field, allowed):
    with pytest.raises(ConfigError) as info:
        api.train_config(**params)
    msg = str(info.value)
    assert f"{field}:" in msg and f"allowed: {allowed}" in msg, msg


def test_largest_allowed_sizes_are_accepted():
    cfg = api.train_config(input_size=1024, subimage_size=4096, batch_size=4096, epochs=100_000)
    assert cfg.model.input_size == (1024, 1024) and cfg.window_size == (4096, 4096)
    assert api.train_config(input_size=16, subimage_size=8).window_size == (8, 8)


@pytest.mark.parametrize(
    "params, field, allowed",
    [
        (dict(batch_size=10**6), "batch size", "1..4096"),
        (dict(min_area=10**9), "min area", "1..16777216"),
        (dict(erosion_width=10**4), "erosion width", "0..100"),
        (dict(context=50.0), "context", "0.0..2.0"),
    ],
)
def test_out_of_range_propagation_settings_name_field_and_range(params, field, allowed):
    with pytest.raises(ConfigError) as info:
        make_config(PropagateConfig, **params)
    assert f"{field}:" in str(info.value) and f"allowed: {allowed}" in str(info.value)


def test_non_finite_numbers_are_refused():
    with pytest.raises(ConfigError, match="weight w0"):
        api.train_config(weight_w0=float("inf"))
    with pytest.raises(ValidationError, match="finite"):
        NormalizationConfig(mode="max", max_value=float("inf"))
    with pytest.raises(ValidationError):
        NormalizationConfig.model_validate_json('{"mode": "max", "max_value": NaN}')


def test_json_numbers_are_read_like_typed_ones():
    # Model files store JSON: 1e9 or 64.0 must meet the same checks as the integers 10**9 and 64.
    assert TrainConfig.model_validate_json('{"subimage_size": 96.0}').window_size == (96, 96)
    for text, field in (
        ('{"subimage_size": 1e5}', "subimage size"),
        ('{"model": {"input_size": [1e9, 1e9]}}', "model.input size"),
        ('{"model": {"input_size": 4096}}', "model.input size"),
    ):
        with pytest.raises(ValidationError) as info:
            TrainConfig.model_validate_json(text)
        (line,) = validation_problems(info.value)
        assert line.startswith(f"{field}:") and "allowed: " in line, line


def test_nested_bounds_name_the_whole_path():
    with pytest.raises(ConfigError) as info:
        make_config(TrainConfig, model={"base_filters": 500})
    assert "model.base filters:" in str(info.value) and "allowed: 4..128" in str(info.value)


# Written by rescunet-ij 0.x before the bounds were added: such files must still load.
OLD_TRAIN_CONFIG_JSON = (
    '{"model":{"input_size":[64,64],"concatenation_level":1,"base_filters":64,"dropout":true,'
    '"in_channels":1},"normalization":{"mode":"max","low_percentile":1.0,"high_percentile":99.8,'
    '"max_value":4095.0},"subimage_size":[96,96],"learning_rate":0.001,"batch_size":32,'
    '"epochs":100,"erosion_width":0,"validation_fraction":0.1,"early_stopping_patience":5,'
    '"lr_plateau_patience":2,"lr_plateau_factor":0.5,"weight_w0":10.0,"weight_sigma":5.0,'
    '"augment":true,"seed":0,"device":"auto","mixed_precision":"auto","num_workers":0}'
)


def test_configs_of_existing_model_files_still_validate():
    cfg = TrainConfig.model_validate_json(OLD_TRAIN_CONFIG_JSON)
    assert cfg.model.input_size == (64, 64) and cfg.window_size == (96, 96)
    assert TrainConfig.model_validate_json(cfg.model_dump_json()) == cfg
    # Every default of every config round-trips through its JSON.
    for cls in (ModelConfig, NormalizationConfig, TrainConfig, PropagateConfig):
        assert cls.model_validate_json(cls().model_dump_json()) == cls()


def test_format_validation_error_keeps_its_shape():
    with pytest.raises(ValidationError) as info:
        TrainConfig(batch_size=0, epochs=0)
    text = format_validation_error(info.value, "invalid training parameters")
    assert text.splitlines() == [
        "invalid training parameters:",
        "  batch size: Input should be greater than or equal to 1 (got 0; allowed: 1..4096)",
        "  epochs: Input should be greater than or equal to 1 (got 0; allowed: 1..100000)",
    ]
