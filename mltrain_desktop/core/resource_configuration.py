"""The compute a deployed model asks for (the seed's ResourceConfiguration)."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class ResourceConfiguration:
    cpu: float | None = None
    memory_in_gb: float | None = None
    gpu: int | None = None

    def __post_init__(self):
        for name in ("cpu", "memory_in_gb", "gpu"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
                raise ValueError(f"ResourceConfiguration.{name} must be a positive number, got {v!r}")

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict | None) -> "ResourceConfiguration | None":
        return cls(**d) if d else None
