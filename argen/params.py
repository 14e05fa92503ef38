"""Typed schema of ``params.yaml``: one section per stage plus the shared ``seed`` and ``data``.

Every stage calls :func:`load_params` before doing any work. A wrong type, an out-of-range value or an
unknown key fails at once with a :class:`ParamsError` naming the key (``data.fold``) and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from argen.emotions import DEFAULT_SCARCE, EMOTIONS

EmotionName = Literal["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]


class ParamsError(ValueError):
    """``params.yaml`` is missing, unreadable or does not match the schema."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(_Section):
    """Which dataset the pipeline reads and how (``data:``).

    ``root`` is the dataset's top folder as distributed (DFEW: the folder holding ``Clip/`` and
    ``EmoLabel_DataSplit/``). ``fold`` picks DFEW's set_1..5 (the demo has the same five folds).
    """

    source: Literal["demo", "dfew", "ferv39k", "ckplus", "folder"] = "demo"
    root: str = "data/raw/demo"
    fold: int = Field(1, ge=1, le=5)
    dfew_frames: Literal["clip_224x224", "clip_224x224_16f"] = "clip_224x224"
    folder_csv: str = "clips.csv"
    folder_test_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    verify_frames: bool = True
    min_frames: int = Field(8, ge=1)


class DemoParams(_Section):
    """The synthetic demo dataset (``demo:``), written in DFEW's on-disk layout.

    ``n_clips`` is the one knob that scales it; subjects follow from ``clips_per_subject``.
    """

    n_clips: int = Field(600, ge=35, le=200_000)
    image_size: int = Field(128, ge=96, le=512)
    n_frames: int = Field(16, ge=8, le=64)
    clips_per_subject: float = Field(5.0, ge=1.0, le=50.0)
    class_fractions: dict[EmotionName, float] = Field(default_factory=lambda: {
        "happy": 0.25, "sad": 0.17, "neutral": 0.22, "angry": 0.18,
        "surprise": 0.10, "disgust": 0.012, "fear": 0.075})
    label_noise: float = Field(0.04, ge=0.0, le=0.5)
    occlusion_prob: float = Field(0.12, ge=0.0, le=1.0)
    jpeg_quality: int = Field(90, ge=30, le=100)

    @field_validator("class_fractions")
    @classmethod
    def _all_classes_positive(cls, value: dict[str, float]) -> dict[str, float]:
        missing = [e for e in EMOTIONS if e not in value]
        if missing:
            raise ValueError(f"needs a fraction for every emotion; missing {', '.join(missing)}")
        if any(v <= 0 for v in value.values()):
            raise ValueError("every fraction must be > 0")
        return value


class DecomposeParams(_Section):
    """Partition into scarce D_s, non-scarce D_ns and neutral D*_ns (``decompose:``, paper sec. 3.2).

    ``identity_splits``: the splits whose neutral clips may supply identity frames. The paper does not
    say; the default keeps test clips out of everything generated, so augmentation never sees test faces.
    """

    scarce_classes: list[EmotionName] = Field(default_factory=lambda: list(DEFAULT_SCARCE), min_length=1)
    identity_splits: list[Literal["train", "test"]] = Field(default_factory=lambda: ["train"], min_length=1)

    @field_validator("scarce_classes")
    @classmethod
    def _scarce_valid(cls, value: list[str]) -> list[str]:
        if "neutral" in value:
            raise ValueError("neutral cannot be scarce: its clips supply the identity frames (D*_ns)")
        if len(set(value)) != len(value):
            raise ValueError("lists a class twice")
        if len(value) >= len(EMOTIONS) - 1:
            raise ValueError("leaves no non-scarce class besides neutral")
        return value


class Params(_Section):
    """The whole ``params.yaml``."""

    seed: int = Field(0, ge=0, le=2**32 - 1)
    data: DataParams = Field(default_factory=DataParams)
    demo: DemoParams = Field(default_factory=DemoParams)
    decompose: DecomposeParams = Field(default_factory=DecomposeParams)


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names allowed at ``loc`` (the location of an unknown key) in the model tree."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _format_error(err: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(Params, err["loc"])
        return f"unknown key '{key}'" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    got = err.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"'{key}': {err['msg']}{shown}"


def validate_params(raw: dict[str, Any], source: str = "params.yaml") -> Params:
    """Validate a parsed params mapping; raise :class:`ParamsError` listing every problem by key."""
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = [_format_error(e) for e in exc.errors()]
        raise ParamsError(f"{source}: invalid parameters:\n  - " + "\n  - ".join(lines)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``.

    Raises:
        ParamsError: the file is missing, is not YAML, or breaks the schema (every bad key is named).
    """
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: not found (run from the project root, where params.yaml lives)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: top level must be a mapping of sections, got {type(raw).__name__}")
    return validate_params(raw, str(path))
