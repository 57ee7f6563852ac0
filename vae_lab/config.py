"""The lab's one small config: each field is a `vae-lab train` flag, and every run saves it."""

import math
from dataclasses import asdict, dataclass, field, fields

from .data import DATASETS
from .errors import LabError


class ConfigError(LabError, ValueError):
    """A config value no run could use."""


MAX_SEED = 2**32 - 1  # NumPy's seeds (the data's shuffles) go no higher


def _option(default, help_text, **extra):
    return field(default=default, metadata={"help": help_text, **extra})


@dataclass
class TrainConfig:
    """The lab's hyperparameters; the defaults are the lab sheet's. The command line's flags are these fields
    (`--latent-dim` for latent_dim), with their help texts."""

    dataset: str = _option("mnist", "images to train on", choices=tuple(DATASETS))
    latent_dim: int = _option(2, "size of z")
    epochs: int = _option(5, "passes over the training set")
    batch_size: int = _option(256, "images per step")
    learning_rate: float = _option(1e-3, "Adam's step size")
    seed: int = _option(0, "seeds weights, shuffles and draws of z", minimum=0, maximum=MAX_SEED)

    def __post_init__(self):
        self.checked()  # a typo such as DATASET = "fashion-mnist" is one sentence where the config is made

    def checked(self):
        """Return self, or raise ConfigError for values no run could use."""
        if self.dataset not in DATASETS:
            raise ConfigError(f"dataset must be one of {', '.join(DATASETS)}, not {self.dataset!r}")
        for name in ("latent_dim", "epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, not {getattr(self, name)}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ConfigError(f"learning_rate must be a positive number, not {self.learning_rate}")
        if not 0 <= int(self.seed) <= MAX_SEED:
            raise ConfigError(f"seed must be from 0 to {MAX_SEED}, not {self.seed}")
        return self

    def as_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

    def differences(self, other):
        """{field: (this value, other's value)} for the fields where OTHER differs."""
        return {name: (getattr(self, name), getattr(other, name)) for name in (f.name for f in fields(self))
                if getattr(self, name) != getattr(other, name)}

    def flags(self, leave_out=()):
        """The command-line flags that give this config (defaults left out), e.g. '--seed 3 --epochs 10'."""
        defaults = TrainConfig()
        return " ".join(f"--{name.replace('_', '-')} {value:g}" if isinstance(value, float) else
                        f"--{name.replace('_', '-')} {value}"
                        for name, value in self.as_dict().items()
                        if name not in leave_out and value != getattr(defaults, name))


# Evaluation defaults (`vae-lab evaluate` and `vae-lab train`): importance samples per test image for
# the NLL bound, and the seed of the draws of z, which metrics.json records next to the numbers.
DEFAULT_IW_SAMPLES = 300
DEFAULT_EVALUATION_SEED = 0
# Importance samples per test image in a notebook's Result: few, so the record runs in seconds; the
# grader's reference run uses the same number.
RECORD_IW_SAMPLES = 20
