"""What a window dataset is made of: window length, stride, contact labelling."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from encoders.errors import DanceSearchError

from ..representation.codec import ContactConfig
from ..representation.layout import FPS


@dataclass(frozen=True)
class WindowConfig:
    """4-s windows (120 frames at 30 fps) every ``stride_frames`` frames of each clip.

    The last window of a clip is aligned to the clip's end when the stride does not land there, so no
    tail goes unused; clips shorter than one window give none. Only ``contacts`` changes what is cached;
    length and stride are how the cache is read (``WindowStore.with_windows``).
    """

    window_frames: int = 120
    stride_frames: int = 30
    contacts: ContactConfig = field(default_factory=ContactConfig)

    def __post_init__(self) -> None:
        if self.window_frames < 8:
            raise DanceSearchError(f"window_frames must be at least 8, got {self.window_frames}")
        if self.stride_frames < 1:
            raise DanceSearchError(f"stride_frames must be at least 1, got {self.stride_frames}")

    @property
    def window_seconds(self) -> float:
        return self.window_frames / FPS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "WindowConfig":
        data = dict(data)
        contacts = ContactConfig(**dict(data.pop("contacts", {}) or {}))
        return cls(contacts=contacts, **data)
