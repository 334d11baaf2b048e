"""Training parameters: the names of `rescunet-ij train` (and of `rescunet_ij.api.train_config`).

Edit the values here; they are checked at once, and a wrong value stops here with a message naming
it. None is a value too: early_stopping_patience None = never stop early; subimage_size None = the
window size the training set was made with (or else the input size).
"""

from rescunet_ij import api
from rescunet_ij.errors import ConfigError

# Every parameter, as `rescunet-ij notebook` wrote it (flat names; normalization a section):
PARAMETERS = {"epochs": 100}


def make_train_config(parameters):
    """The checked training configuration for ``parameters`` (flat names, as above)."""
    config = api.train_config(**parameters)
    # api.train_config reads None as "the default"; here None is meant as the value itself.
    for key in [k for k, v in parameters.items() if v is None]:
        if getattr(config, key, None) is None:
            continue  # None already, or a model setting (train_config keeps its default)
        try:
            setattr(config, key, None)  # checked: only settings that allow None take it
        except ValueError:
            raise ConfigError(
                f"the training parameter {key} cannot be None; give it a value, or delete its "
                "line to use the default"
            ) from None
    return config


config = make_train_config(PARAMETERS)
for key, value in config.model_dump().items():
    print(f"{key:>24}: {value}")
