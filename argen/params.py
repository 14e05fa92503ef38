"""Typed schema of ``params.yaml``: one section per stage plus the shared ``seed`` and ``data``.

Every stage calls :func:`load_params` before doing any work. A wrong type, an out-of-range value or an
unknown key fails at once with a :class:`ParamsError` naming the key (``data.fold``) and what is allowed.
Bad input by class: no number may be infinite or NaN (``allow_inf_nan=False`` on every section), a YAML
boolean is never read as a number (``data.fold: true`` is refused, not fold 1), every number has its range
where it is declared, every param that indexes frames or actions is checked against what the stage can
use (``preview.frames`` against ``generator.n_frames``, ``preview.action`` and ``generate.fixed_action`` against the
action space), and the file itself must be a non-empty YAML mapping without duplicate keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from argen.emotions import DEFAULT_SCARCE, EMOTIONS

EmotionName = Literal["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]


class ParamsError(ValueError):
    """``params.yaml`` is missing, unreadable or does not match the schema."""


#: S_T x S_ab, the actions (T, a, b) a generator is run with: :data:`argen.actions.ACTIONS`, repeated here so that
#: params.py, which every stage runs, adds no module to every stage's deps (a test checks that the two agree).
ACTION_SPACE: tuple[tuple[int, float, float], ...] = tuple(
    (t, a, b) for t in (5, 10, 15, 20) for a, b in ((2.0, 2.0), (3.0, 2.0), (2.0, 3.0)))

NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]


def _admits_bool(annotation: Any) -> bool:
    """Whether a field's type (or a type inside it) is bool or a section, which check booleans themselves."""
    if annotation is bool or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return True
    return any(_admits_bool(arg) for arg in get_args(annotation))


def _holds_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_bool(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_bool(v) for v in value.values())
    return False


def check_action(action: tuple[int, float, float], key: str) -> None:
    """ValueError naming ``key`` unless ``action`` is one of :data:`ACTION_SPACE`."""
    if (int(action[0]), float(action[1]), float(action[2])) not in ACTION_SPACE:
        raise ValueError(f"{key} {list(action)} is not in the action space "
                         "S_T x S_ab = {5, 10, 15, 20} x {(2, 2), (3, 2), (2, 3)}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True,
                              allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """A YAML ``true``/``false`` where a number (or a name) is expected is refused, not read as 1/0."""
        field = cls.model_fields[info.field_name]
        if _holds_bool(value) and not _admits_bool(field.annotation):
            raise ValueError(f"a boolean ({value!r}) where the key expects {_type_name(field.annotation)}")
        return value


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


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

    @field_validator("root", "folder_csv")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a path; an empty value would silently mean the working directory")
        return value


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


class ExtractAUsParams(_Section):
    """Per-frame faces, landmarks and AU intensities (``extract_aus:``, paper sec. 3.2, supp. C).

    Clips processed: every identity source (neutral, D*_ns), every scarce clip of ``splits`` (for the AU
    knowledge base) and ``sample_per_class`` clips of each class from ``splits`` (training tracks for the
    motion generator's model, and the warp generator's AU-to-landmark model; ``all``, the default, takes
    every clip of ``splits``: the motion model learns each emotion from all its clips). ``landmarks`` backend options: ``reference`` (the neutral each AU is measured
    against), ``smooth_frames`` and ``neutral_bounds`` (clamp the reference into a neutral face's range
    where that range is the same for every face); see :mod:`argen.extract.landmarks`. ``openface``
    backend options: ``openface_bin`` (resolved to the real file, beside which OpenFace finds its models),
    ``openface_model`` (``-mloc``, when set), ``openface_args`` (extra arguments a build needs),
    ``openface_timeout_s`` (per clip) and ``au_static``; see :mod:`argen.extract.openface`.
    """

    backend: Literal["landmarks", "openface", "csv"] = "landmarks"
    reference: Literal["clip", "population", "first"] = "clip"
    smooth_frames: Literal[1, 3, 5] = 5
    neutral_bounds: bool = True
    openface_bin: str = "FeatureExtraction"
    openface_model: str = ""
    openface_args: list[str] = Field(default_factory=list)
    openface_timeout_s: float = Field(600.0, gt=0.0)
    au_static: bool = True
    csv_dir: str = ""
    splits: list[Literal["train", "test"]] = Field(default_factory=lambda: ["train"], min_length=1)
    sample_per_class: Annotated[int, Field(ge=0)] | Literal["all"] = "all"
    workers: int = Field(2, ge=1, le=64)

    @model_validator(mode="after")
    def _csv_needs_dir(self) -> "ExtractAUsParams":
        if self.backend == "csv" and not self.csv_dir:
            raise ValueError("backend 'csv' needs extract_aus.csv_dir, the folder of <clip_id>.csv files")
        return self


class IdentitiesParams(_Section):
    """Identity frame selection per neutral clip (``identities:``, eq. 6 and 22-26).

    A frame is admissible when its Laplacian-variance sharpness (eq. 22), mean grey level (eq. 25) and
    grey-level standard deviation (eq. 26) are within bounds, a face was found, and both the image's
    shorter side and the face box's shorter side are large enough, and, with ``neutral_check``, the face
    looks neutral on an absolute test of its landmarks (lips closed: inner-lip gap at most ``max_lip_gap``
    inter-ocular distances; lip corners at most ``max_corner_lift`` IOD above the lip line; no smirk: the
    two corners' heights differ by at most ``max_corner_asymmetry`` IOD; eyes open: aperture, lid distance
    over eye width, at least ``min_eye_aperture``; no teeth: at most ``max_teeth_share`` of the mouth
    teeth-like, checked on the image). Among admissible frames the one with the lowest mean AU intensity
    (eq. 23-24) is the identity. See :mod:`argen.identities`.
    """

    min_sharpness: float = Field(100.0, ge=0.0)
    min_brightness: float = Field(40.0, ge=0.0, le=255.0)
    max_brightness: float = Field(220.0, ge=0.0, le=255.0)
    min_contrast: float = Field(20.0, ge=0.0)
    min_face_size: int = Field(40, ge=1)
    min_image_size: int = Field(64, ge=1)
    neutral_check: bool = True
    max_lip_gap: float = Field(0.03, ge=0.0)
    max_corner_lift: float = Field(0.05, ge=-1.0)
    max_corner_asymmetry: float = Field(0.065, ge=0.0)
    max_teeth_share: float = Field(0.1, ge=0.0, le=1.0)
    min_eye_aperture: float = Field(0.15, ge=0.0)
    grid_size: int = Field(24, ge=1, le=200)

    @model_validator(mode="after")
    def _brightness_range(self) -> "IdentitiesParams":
        if self.min_brightness >= self.max_brightness:
            raise ValueError("min_brightness must be below max_brightness")
        return self


class AUKnowledgeBaseParams(_Section):
    """The scarce-emotion AU knowledge base (``au_kb:``, eq. 7); see :mod:`argen.asi.kb`."""

    active_threshold: float = Field(1.5, gt=0.0, le=5.0)
    min_support: float = Field(0.2, gt=0.0, le=1.0)
    max_data_entries: int = Field(6, ge=0, le=100)
    #: Leave out entries whose AUs the training clips of another emotion show more often (false: the paper's
    #: plain union of literature and data).
    data_check: bool = True


class ASIParams(_Section):
    """Prompt generation (``asi:``, eq. 8-9, figure 4, supp. G); see :mod:`argen.asi.prompts`.

    ``mode`` is the paper's table 5 ablation: ``fixed``, ``vlm_only`` or ``vlm_rag``. With
    ``measure_without_retrieval`` the stage also composes every prompt without retrieval (same backend)
    to report the hallucination rate with and without the knowledge base.

    Qwen2.5-VL backend (:mod:`argen.asi.vlm`): ``device`` ``auto`` picks CUDA when torch sees it; without
    CUDA it refuses unless ``allow_cpu`` (default false; an explicit ``device: cpu`` is not refused).
    Sampling is fully explicit, nothing is taken from the checkpoint's ``generation_config.json``:
    ``temperature`` (0.8), ``top_p`` (0.9), top-k off, ``repetition_penalty`` (default 1.0 = none, as in
    the paper; Qwen's checkpoint ships 1.05), ``max_new_tokens`` (256). ``max_pixels`` (default 200704 =
    448x448, 256 visual tokens) caps each image after the processor's resize; a full-HD frame would cost
    ~2.7k tokens.
    """

    mode: Literal["fixed", "vlm_only", "vlm_rag"] = "vlm_rag"
    backend: Literal["template", "qwen2_5_vl"] = "template"
    retrieval: Literal["uniform", "semantic"] = "uniform"
    k: int = Field(2, ge=1, le=20)
    max_aus: int = Field(5, ge=2, le=17)
    on_hallucination: Literal["regenerate", "drop"] = "regenerate"
    max_tries: int = Field(3, ge=1, le=10)
    measure_without_retrieval: bool = True
    qwen_path: str = "models/Qwen2.5-VL-7B-Instruct"
    device: str = "auto"
    batch_size: int = Field(4, ge=1, le=256)
    temperature: float = Field(0.8, gt=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    max_new_tokens: int = Field(256, ge=8, le=2048)
    repetition_penalty: float = Field(1.0, ge=1.0, le=2.0)
    max_pixels: int = Field(200704, ge=3136, le=12845056)
    allow_cpu: bool = False


class MotionModelParams(_Section):
    """The ``motion`` generator's landmark-motion diffusion model (``motion_model:``); see :mod:`argen.generators.motion`.

    Trained on the training split's landmark tracks from extract_aus. ``n_frames`` is M, the motion's
    length (the generated video's). A clip with fewer than ``min_frames`` detected frames gives no track;
    fewer than ``min_tracks`` tracks stop the stage. ``cond_min`` and ``cond_max_aus`` turn a clip's AU
    change into a prompt-like condition (AUs with r >= cond_min, the strongest cond_max_aus of them).
    ``mirror`` adds every track mirrored. ``d_model``, ``n_layers``, ``n_heads``: the transformer denoiser.
    ``steps``, ``batch_size``, ``lr``, ``cond_dropout``: classifier-free training. ``text_au_dropout``,
    ``au_dropout``: shares of training examples whose text loses its AU phrases, whose AU vector is zeroed
    (so that prompts without AU codes still carry their emotion; :class:`argen.generators.motion.TrainingSettings`).
    0.8 each: then 64 % of the examples carry the emotion's words alone, and the fixed prompt's motion is more
    its emotion's (the stage's check on the 3000-clip demo at guidance (3, 5), 0.4 -> 0.8: fear's r 0.84 -> 0.89,
    sad's 0.48 -> 0.60; docs/generators.md).
    ``class_balance``: how often each emotion's tracks are drawn, proportional to n_e^-class_balance (0: in
    proportion to the data, 1: every emotion equally often; the scarce emotions are the ones generated).
    ``kb_conditions``: also train every track of a knowledge-base emotion once more with the condition of one
    of its emotion's KB entries, the AUs its prompts cite (:func:`argen.generators.motion.with_kb_conditions`);
    false (the default) trains on the measured conditions only: on the evidence run the copies brought the
    generated AU profiles closer to their emotions' but lowered the judge's shares (docs/generators.md).
    ``check_samples``: motions generated per emotion and prompt kind for the stage's apex-AU check against
    the real tracks.
    """

    n_frames: int = Field(16, ge=4, le=64)
    min_frames: int = Field(8, ge=2)
    min_tracks: int = Field(30, ge=1)
    cond_min: float = Field(0.2, ge=0.0, le=1.0)
    cond_max_aus: int = Field(5, ge=1, le=16)
    mirror: bool = True
    d_model: int = Field(128, ge=16, le=1024)
    n_layers: int = Field(4, ge=1, le=16)
    n_heads: int = Field(4, ge=1, le=16)
    steps: int = Field(2000, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    cond_dropout: float = Field(0.1, ge=0.0, lt=1.0)
    text_au_dropout: float = Field(0.8, ge=0.0, le=1.0)
    au_dropout: float = Field(0.8, ge=0.0, le=1.0)
    class_balance: float = Field(1.0, ge=0.0, le=2.0)
    kb_conditions: bool = False
    check_samples: int = Field(16, ge=1)

    @model_validator(mode="after")
    def _heads_divide(self) -> "MotionModelParams":
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if self.d_model % 2:
            raise ValueError("d_model must be even (sinusoidal timestep embedding)")
        return self


class GeneratorParams(_Section):
    """The video generator (``generator:``, sec. 3.1 and 3.3); see :mod:`argen.generators`.

    ``generator``: ``motion`` (CPU default: landmark-motion diffusion from ``motion_path``, rendered by a
    warp), ``warp`` (CPU, landmark warp; T has no effect) or ``ti2v`` (TI2V-Zero on ModelScope T2V
    from ``t2v_path``). ``motion_g_min``, ``motion_g_max``: the motion model's guidance bounds in eq. 12,
    the paper's (7, 11) mapped onto (3, 5) (:class:`argen.generators.motion.MotionGuidance`): like the paper's,
    the floor amplifies the prompt's direction; it may not go below the conditional model (g = 1), so no action
    yields the unconditional motion. ``motion_sampler``: the motion model's sampler, ``ddim`` (default)
    or ``unipc`` (more of the real motions' amplitude at the same T; ``python -m benchmarks.motion_sampler``).
    ``resample_iters``: TI2V-Zero's reference uses 4; each costs another UNet call per
    step. ``guidance_form``: eq. 12 as written (``paper``, never reaches g_max), ``peak``-normalised, or
    ``constant`` (no curve: the midpoint of the bounds every frame, table 5's "without the guidance curve").
    ``schedule``: the DDIM timestep grid, ``modelscope`` (the reference's: T = 15 runs 16 steps from
    t = 991) or ``diffusers`` (leading spacing: 15 steps from 925); records keep the steps run.
    ``queue``: ``reencode`` (the reference: each generated frame is decoded and re-encoded into the
    queue, one VAE decode + encode per frame) or ``latent`` (the queue keeps the DDIM latent).
    """

    generator: Literal["motion", "warp", "ti2v"] = "motion"
    motion_path: str = "models/motion"
    motion_g_min: float = Field(3.0, ge=1.0)
    motion_g_max: float = Field(5.0, ge=1.0)
    motion_sampler: Literal["ddim", "unipc"] = "ddim"
    t2v_path: str = "models/text-to-video-ms-1.7b"
    device: str = "auto"
    n_frames: int = Field(16, ge=2, le=64)
    queue_len: int = Field(15, ge=1, le=63)
    resample_iters: int = Field(4, ge=0, le=10)
    size: int = Field(256, ge=32, le=1024)
    g_min: float = Field(7.0, ge=0.0)
    g_max: float = Field(11.0, ge=0.0)
    guidance_form: Literal["paper", "peak", "constant"] = "paper"
    schedule: Literal["modelscope", "diffusers"] = "modelscope"
    queue: Literal["reencode", "latent"] = "reencode"
    warp_ridge: float = Field(1.0, ge=0.0)

    @model_validator(mode="after")
    def _bounds(self) -> "GeneratorParams":
        if self.g_min > self.g_max:
            raise ValueError("g_min must not exceed g_max")
        if self.motion_g_min > self.motion_g_max:
            raise ValueError("motion_g_min must not exceed motion_g_max")
        if self.size % 8:
            raise ValueError("size must be a multiple of 8 (the VAE downsamples by 8)")
        return self


class ARDParams(_Section):
    """The adaptive policy (``ard:``, sec. 3.3, Algorithm 1 stage 1); see :mod:`argen.policy`.

    Total reward R = R_S + lambda (w_Q R_Q + w_F R_F + w_E R_E) + w_X R_X + ``weight_human`` R_H
    (:mod:`argen.policy.comparison`; ``weight_quality``, ``weight_face``, ``weight_expression`` are w_Q, w_F,
    w_E, 1 in the paper, 0 to drop a reward as table 4 does). ``reward``: ``argen`` (the default) adds the
    expression-fidelity term R_X = (R_A + R_C) / 2 with weight w_X = ``weight_fidelity`` (a number, or
    ``auto``: the smallest weight of a grid at which the actions chosen on the *training* pairs keep
    ``fidelity_keep`` of the fidelity attainable there, :func:`argen.policy.comparison.choose_fidelity_weight`;
    ``fidelity_reference``: ``fixed`` measures it at the best fixed action, ``per_pair`` at each pair's best);
    ``paper`` is eq. 18 alone (w_X = 0). R_H (weight 0 by default) from ``ratings_csv``; per pair ``candidates`` actions sampled, the ``top_k`` best keep R, the others get -``gamma``;
    ``advantage`` ``reinforce`` (the paper) or ``group`` (group-normalised, Facial-R1); Adam ``policy_lr``,
    ``policy_batch`` pairs per step, ``policy_steps`` steps.
    """

    lambda_: float = Field(3.0, ge=0.0, alias="lambda")
    gamma: float = Field(1.0, ge=0.0)
    top_k: int = Field(2, ge=1)
    candidates: int = Field(4, ge=1, le=64)
    advantage: Literal["reinforce", "group"] = "reinforce"
    weight_quality: float = Field(1.0, ge=0.0)
    weight_face: float = Field(1.0, ge=0.0)
    weight_expression: float = Field(1.0, ge=0.0)
    reward: Literal["argen", "paper"] = "argen"
    weight_fidelity: float | Literal["auto"] = "auto"
    fidelity_keep: float = Field(0.9, gt=0.0, le=1.0)
    fidelity_reference: Literal["fixed", "per_pair"] = "fixed"
    weight_human: float = Field(0.0, ge=0.0)
    ratings_csv: str = ""
    policy_lr: float = Field(1e-4, gt=0.0)
    policy_batch: int = Field(32, ge=1)
    policy_steps: int = Field(2000, ge=1)
    policy_d_model: int = Field(64, ge=8, le=1024)
    policy_seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> "ARDParams":
        if self.top_k > self.candidates:
            raise ValueError(f"top_k ({self.top_k}) must not exceed candidates ({self.candidates})")
        if self.weight_fidelity != "auto" and self.weight_fidelity < 0:
            raise ValueError(f"weight_fidelity must be auto or >= 0, got {self.weight_fidelity}")
        if self.weight_human > 0 and not self.ratings_csv:
            raise ValueError("weight_human > 0 needs ard.ratings_csv, the CSV of human ratings (clip,rating)")
        return self


class RewardsParams(_Section):
    """The reward table (``rewards:``, eq. 14-17, supp. D); see :mod:`argen.rewards.table`.

    Pairs (identity x scarce-emotion prompt) are split ``val_fraction`` for validation, by identity and
    seeded; ``max_identities`` (0 = all) caps the identities used. Every pair is generated with each of
    the 12 actions and ``n_seeds`` seeds as a short video of ``frames`` frames, and audited:
    R_Q with ``alpha`` and the sharpness and contrast references, R_F with faces of at least
    ``face_min_size`` of the frame, R_E with ``a_max`` (``auto``: the ``a_max_quantile`` of the AU-vector
    norm over the real training frames of extract_aus), R_A with ``active_threshold``. ``au_backend``
    audits the generated frames (the paper uses OpenFace). Work is split in shards of ``shard_pairs``
    pairs on ``workers`` processes; finished shards are kept and reused. ``keep_videos`` also writes each
    short video as a PNG strip (for raters of the human-preference reward).
    """

    frames: int = Field(8, ge=2, le=64)
    n_seeds: int = Field(1, ge=1, le=16)
    val_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    max_identities: int = Field(0, ge=0)
    alpha: float = Field(0.6, ge=0.0, le=1.0)
    sharpness_ref: float = Field(200.0, gt=0.0)
    contrast_ref: float = Field(32.0, gt=0.0)
    face_min_size: float = Field(0.2, gt=0.0, le=1.0)
    a_max: float | Literal["auto"] = "auto"
    a_max_quantile: float = Field(0.95, gt=0.0, le=1.0)
    active_threshold: float = Field(1.5, gt=0.0, le=5.0)
    au_backend: Literal["landmarks", "openface"] = "landmarks"
    shard_pairs: int = Field(4, ge=1)
    workers: int = Field(2, ge=1, le=64)
    keep_videos: bool = False

    @field_validator("a_max")
    @classmethod
    def _positive(cls, value: float | str) -> float | str:
        if value != "auto" and value <= 0:
            raise ValueError("must be > 0 or 'auto'")
        return value


class GenerateParams(_Section):
    """The augmentation set (``generate:``, Algorithm 1 stage 2).

    ``per_class``: generated clips per scarce emotion, either explicit counts or ``table7``: the paper's
    table 7 scaled to this dataset (:func:`argen.counts.table7_counts`: ARGen adds surprise 180,
    disgust 162, fear 141 to DFEW's per-fold training split, whose scarce classes hold 1470 + 145 + 905 =
    2520 clips; here each count is ``round(table7_factor x added x n / 2520)``, n the training split's
    surprise + disgust + fear clips, so the added share of the scarce training clips and the 180:162:141
    proportions are the paper's). Pairs are drawn seeded from every identity x prompt of the emotion, and
    when more clips than identities are asked for, identities repeat with new seeds. ``jpeg_quality`` of
    the frames.
    ``policy`` picks each clip's action: ``learned`` (argmax of the trained policy), ``random`` or ``fixed``
    (``fixed_action``, also the policy stage's fixed baseline), the paper's ablations.
    """

    per_class: dict[EmotionName, int] | Literal["table7"] = "table7"
    table7_factor: float = Field(1.0, gt=0.0)
    jpeg_quality: int = Field(95, ge=30, le=100)
    contact_sheet: int = Field(9, ge=0, le=64)
    policy: Literal["learned", "random", "fixed"] = "learned"
    fixed_action: tuple[int, float, float] = (20, 2.0, 2.0)

    @model_validator(mode="after")
    def _in_action_space(self) -> "GenerateParams":
        check_action(self.fixed_action, "fixed_action")
        return self

    @field_validator("per_class")
    @classmethod
    def _non_negative(cls, value: dict[str, int] | str) -> dict[str, int] | str:
        if isinstance(value, dict) and any(v < 0 for v in value.values()):
            raise ValueError("counts must be >= 0")
        return value


class PreviewParams(_Section):
    """The generator preview (``preview:``): a contact sheet of generated clips per scarce emotion.

    ``identities`` demo identities per emotion (each with its first verified prompt), plus
    ``skimage.data.astronaut()`` as a real face when ``real_face`` is on (with ``fixed_prompt``, also animated
    by the fixed prompt, which cites no AU); every clip made with ``action`` (T, a, b) and ``seed``;
    ``frames`` are the 1-based frames shown.
    """

    identities: int = Field(2, ge=1, le=16)
    real_face: bool = True
    fixed_prompt: bool = True
    action: tuple[int, float, float] = (20, 2.0, 2.0)
    seed: int = Field(0, ge=0)
    frames: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [1, 6, 11, 16], min_length=1)

    @model_validator(mode="after")
    def _action(self) -> "PreviewParams":
        check_action(self.action, "action")
        return self


#: Recognition models (argen.recognize.models.MODEL_NAMES; kept here so params validate without torch).
RecognitionModel = Literal["Res18_LSTM", "Res18_Transformer", "VGG13_LSTM", "VGG13_Transformer", "DFER_CLIP",
                           "Landmark_Transformer"]
Variant = Literal["original", "argen", "oracle", "oversample"]


class TrainingOverride(_Section):
    """Per-model training settings that replace the ``recognize`` defaults (unset keys keep them)."""

    epochs: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1)
    lr: float | None = Field(None, gt=0.0)


class RecognizeParams(_Section):
    """DFER baselines on the original and augmented training split (``recognize:``, paper sec. 4.1-4.2).

    ``models`` x ``variants`` is the ``recognize`` stage's DVC matrix (``dvc.yaml`` reads both lists).
    Variants change only the training split: ``original`` (the dataset's), ``argen`` (+ the generated set
    ``data/generated``), ``oracle`` (demo only: + clips rendered by the demo's own renderer for new
    subjects, as many per class as ``argen`` adds; the ceiling for any generator), ``oversample`` (+ the real
    scarce training clips repeated to ``generate.per_class``'s counts: the baseline any generative
    augmentation must beat). ``seeds``: one training
    run per seed. Video models read ``frames`` frames by segments at ``image_size`` px; ``width`` is the
    CNNs' first-stage width (64 = the paper's full ResNet-18 / VGG-13; the CPU demo uses 16 at 64 px; the
    paper's sec. 4.1 uses 224 px, DFEW's own baselines 112); ``hidden`` the temporal heads' width (256, the
    paper's) and ``geometry_hidden`` the geometry baseline's. SGD with ``momentum`` and ``weight_decay``,
    learning rate ``lr`` (the paper's 1e-3) on a cosine schedule over ``epochs``; ``overrides`` per model
    (e.g. the geometry baseline's own epochs and rate). ``flip``: random horizontal flips in training (video
    models). ``face_crop``: crop every clip to its Haar face box before resizing (datasets not already
    cropped, e.g. CK+). ``clip_path``: a local CLIP ViT-B/32 (``openai/clip-vit-base-patch32``) for
    DFER_CLIP, trained with its own recipe's rates ``clip_lrs`` (image encoder, temporal net, prompts).
    ``bootstrap``: resamples of the test clips for the WAR/UAR intervals. ``workers``: decode processes.
    """

    models: list[RecognitionModel] = Field(default_factory=lambda: ["Landmark_Transformer", "Res18_LSTM"],
                                           min_length=1)
    variants: list[Variant] = Field(default_factory=lambda: ["original", "argen"], min_length=1)
    seeds: list[NonNegativeInt] = Field(default_factory=lambda: [0], min_length=1)
    frames: int = Field(16, ge=1, le=64)
    image_size: int = Field(64, ge=32, le=512)
    width: int = Field(16, ge=4, le=128)
    hidden: int = Field(256, ge=8, le=2048)
    geometry_hidden: int = Field(64, ge=8, le=2048)
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    overrides: dict[RecognitionModel, TrainingOverride] = Field(default_factory=dict)
    flip: bool = True
    face_crop: bool = False
    clip_path: str = "models/clip-vit-base-patch32"
    clip_lrs: tuple[PositiveFloat, PositiveFloat, PositiveFloat] = (1e-5, 1e-2, 1e-3)
    bootstrap: int = Field(2000, ge=0)
    workers: int = Field(2, ge=1, le=64)

    @field_validator("models", "variants", "seeds")
    @classmethod
    def _unique(cls, value: list) -> list:
        if len(set(value)) != len(value):
            raise ValueError("entries must be unique")
        return value

    def training(self, model: str) -> tuple[int, int, float]:
        """(epochs, batch size, learning rate) of ``model``, its override applied."""
        override = self.overrides.get(model, TrainingOverride())
        return (override.epochs or self.epochs, override.batch_size or self.batch_size, override.lr or self.lr)


class EvaluateParams(_Section):
    """Generation metrics (``evaluate:``, paper tables 1, 4, 5, 8 and supp. D).

    **Ground truth** (the paper's protocol): every clip of a scarce emotion among the evaluation clips gives
    its first frame and its label to ARGen (the prompt composer, the policy and the generator as
    configured); the generated clip is compared with the real one. ``source``: ``pipeline`` takes them from
    the pipeline's own dataset, splits ``splits`` (the test split by default: clips no identity frame or
    generated training clip comes from); ``ckplus`` reads the CK+ folder ``root`` through its adapter
    (zero-shot: every labelled sequence of a scarce emotion; the models come from the pipeline's dataset).
    ``max_per_class``: at most this many clips per emotion, drawn with the seed (0 = all). Clips generated
    for evaluation are written to ``data/evaluate`` and never enter a training set.

    **Feature spaces.** ``au_segments``: an AU trajectory is the AU backend's intensities averaged over this
    many equal parts of the clip (onset to apex: 4 x 17 = 68 numbers). The face descriptor is dlib's
    128-d descriptor averaged over ``descriptor_frames`` frames spread over the clip. ``i3d_path``: the
    standard FVD detector (a local ``i3d_pretrained_400.pt`` state dict or StyleGAN-V's
    ``i3d_torchscript.pt``); empty = no FVD. ``lpips_alexnet_path`` + ``lpips_heads_path``: LPIPS
    diversity (torchvision's AlexNet ImageNet state dict and the ``lpips`` package's
    ``weights/v0.1/alex.pth``); empty = mean pairwise distance in the feature spaces instead.
    ``bootstrap``: resamples for every interval; ``min_group``: clips a subject or expression group needs
    on both sides to enter sFD/tFD. ``floor``: on the demo, re-render every evaluation clip's subject and
    label with the demo's own renderer (a perfect generator given the same inputs) for each distance's
    floor at the same N. ``grid_examples``: clips per emotion in ``reports/evaluate/grid.jpg``.
    """

    source: Literal["pipeline", "ckplus"] = "pipeline"
    root: str = ""
    splits: list[Literal["train", "test"]] = Field(default_factory=lambda: ["test"], min_length=1)
    max_per_class: int = Field(0, ge=0)
    au_segments: int = Field(4, ge=1, le=16)
    descriptor_frames: int = Field(4, ge=1, le=16)
    i3d_path: str = ""
    lpips_alexnet_path: str = ""
    lpips_heads_path: str = ""
    device: str = "cpu"
    bootstrap: int = Field(1000, ge=0)
    min_group: int = Field(2, ge=2)
    floor: bool = True
    grid_examples: int = Field(1, ge=1, le=8)

    @model_validator(mode="after")
    def _paths(self) -> "EvaluateParams":
        if self.source == "ckplus" and not self.root:
            raise ValueError("evaluate.source 'ckplus' needs evaluate.root, the CK+ top folder")
        if bool(self.lpips_alexnet_path) != bool(self.lpips_heads_path):
            raise ValueError("LPIPS needs both evaluate.lpips_alexnet_path and evaluate.lpips_heads_path")
        return self


class ReportParams(_Section):
    """The report (``report:``): ``reports/report.md`` and the self-contained ``reports/report.html``.

    ``title``: its heading. ``clips_per_emotion``: generated clips shown per scarce emotion (fig. 3).
    """

    title: str = "ARGen report"
    clips_per_emotion: int = Field(2, ge=1, le=10)


class Params(_Section):
    """The whole ``params.yaml``."""

    seed: int = Field(0, ge=0, le=2**32 - 1)
    data: DataParams = Field(default_factory=DataParams)
    demo: DemoParams = Field(default_factory=DemoParams)
    decompose: DecomposeParams = Field(default_factory=DecomposeParams)
    extract_aus: ExtractAUsParams = Field(default_factory=ExtractAUsParams)
    identities: IdentitiesParams = Field(default_factory=IdentitiesParams)
    au_kb: AUKnowledgeBaseParams = Field(default_factory=AUKnowledgeBaseParams)
    asi: ASIParams = Field(default_factory=ASIParams)
    motion_model: MotionModelParams = Field(default_factory=MotionModelParams)
    generator: GeneratorParams = Field(default_factory=GeneratorParams)
    ard: ARDParams = Field(default_factory=ARDParams)
    preview: PreviewParams = Field(default_factory=PreviewParams)
    rewards: RewardsParams = Field(default_factory=RewardsParams)
    generate: GenerateParams = Field(default_factory=GenerateParams)
    recognize: RecognizeParams = Field(default_factory=RecognizeParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    report: ReportParams = Field(default_factory=ReportParams)

    @model_validator(mode="after")
    def _frames_exist(self) -> "Params":
        late = [f for f in self.preview.frames if f > self.generator.n_frames]
        if late:
            raise ValueError(f"preview.frames {late} lie beyond the {self.generator.n_frames} frames a clip has "
                             "(generator.n_frames; frames are 1-based)")
        return self


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
    return f"'{key}': {err['msg']}{shown}" if key else f"{err['msg']}{shown}"


def validate_params(raw: dict[str, Any], source: str = "params.yaml") -> Params:
    """Validate a parsed params mapping; raise :class:`ParamsError` listing every problem by key."""
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = [_format_error(e) for e in exc.errors()]
        raise ParamsError(f"{source}: invalid parameters:\n  - " + "\n  - ".join(lines)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that repeats a key (PyYAML keeps the last value silently)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1}; YAML would keep only the last "
                            "value)", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def parse_params_yaml(text: str, source: str) -> dict[str, Any]:
    """The mapping a params file holds.

    Raises:
        ParamsError: the text is not YAML, repeats a key, is empty (every stage would silently run on the
            defaults) or is not a mapping; the message names ``source`` and the line.
    """
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{source}: not valid YAML: {exc}") from None
    if raw is None:
        raise ParamsError(f"{source}: empty; it must hold the sections of params.yaml (an empty file would run "
                          "every stage on the defaults)")
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: top level must be a mapping of sections, got {type(raw).__name__}")
    return raw


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``.

    Raises:
        ParamsError: the file is missing, is not YAML, repeats a key, is empty or breaks the schema (every bad
            key is named).
    """
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: not found (run from the project root, where params.yaml lives)")
    return validate_params(parse_params_yaml(path.read_text(), str(path)), str(path))
