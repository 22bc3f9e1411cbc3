"""A model's training recipe: the `training:` block of its YAML config, overridable from the
command line. Defaults are the published recipes' shared values (see the spec)."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .augment import Augment
from .pairs import Jitter


def _coerce(cls: type[Recipe], name: str, value: Any) -> Any:
    """YAML reads `1e-4` as a string (only `1.0e-4` is a float): convert to the field's type."""
    default = next(f for f in dataclasses.fields(cls) if f.name == name).default
    if name == "lr_groups":
        return {str(prefix): float(lr) for prefix, lr in dict(value).items()}
    if name == "lr_drop_epoch":
        return None if value is None else int(value)
    if isinstance(default, (int, float)):
        return type(default)(value)
    raise TypeError(f"no conversion for the recipe's {name} (its default is {default!r})")


@dataclass
class Recipe:
    epochs: int = 1
    pairs_per_epoch: int = 60000  # samples per epoch over all processes together
    batch_size: int = 16  # per process
    lr: float = 1e-4
    # Parameter-name prefix -> learning rate; the longest matching prefix wins, others get `lr`.
    lr_groups: dict[str, float] = field(default_factory=dict)
    weight_decay: float = 1e-4
    lr_drop_epoch: int | None = None  # from this (0-based) epoch on, lr x lr_drop_factor
    lr_drop_factor: float = 0.1
    warmup_steps: int = 0  # linear warm-up over the first steps
    grad_clip: float = 0.1
    max_gap: int = 200  # frames between the oldest template and the search frame
    center_jitter: float = 3.0
    scale_jitter: float = 0.25
    grayscale: float = 0.05
    flip: float = 0.5
    brightness: float = 0.2
    workers: int = 4  # data loading processes per training process
    seed: int = 0

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> Recipe:
        """A recipe from a config block, refusing unknown keys (a typo would silently do nothing)."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training recipe keys {unknown}; known: {sorted(known)}")
        try:
            recipe = cls(**{name: _coerce(cls, name, value) for name, value in values.items()})
        except (TypeError, ValueError) as error:
            raise ValueError(f"training recipe: {error}") from error
        recipe.check()
        return recipe

    def with_overrides(self, **overrides: Any) -> Recipe:
        """A copy with the given values replaced; None means 'not given'."""
        return Recipe.from_dict({**self.as_dict(), **{k: v for k, v in overrides.items() if v is not None}})

    def as_dict(self) -> dict[str, Any]:
        """Plain values, storable in a checkpoint's metadata."""
        return dataclasses.asdict(self)

    def check(self) -> None:
        for name in ("epochs", "pairs_per_epoch", "batch_size", "max_gap"):
            if getattr(self, name) < 1:
                raise ValueError(f"training recipe: {name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or any(lr < 0 for lr in self.lr_groups.values()):
            raise ValueError("training recipe: learning rates must be positive")
        if self.workers < 0 or self.warmup_steps < 0:
            raise ValueError("training recipe: workers and warmup_steps cannot be negative")

    @property
    def jitter(self) -> Jitter:
        return Jitter(self.center_jitter, self.scale_jitter)

    @property
    def augment(self) -> Augment:
        return Augment(self.grayscale, self.flip, self.brightness)

    def steps_per_epoch(self, world_size: int) -> int:
        """Optimizer steps per epoch: every process takes a batch per step."""
        steps = self.pairs_per_epoch // (self.batch_size * world_size)
        if steps < 1:
            raise ValueError(
                f"{self.pairs_per_epoch} pairs per epoch do not fill one step of {self.batch_size} "
                f"pairs on {world_size} process(es)"
            )
        return steps

    def lr_factor(self, step: int, epoch: int) -> float:
        """Multiplier of every group's learning rate: linear warm-up, then the step decay."""
        warmup = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        dropped = self.lr_drop_epoch is not None and epoch >= self.lr_drop_epoch
        return warmup * (self.lr_drop_factor if dropped else 1.0)
