"""The ``motion`` generator's model: a denoising diffusion model over landmark-motion sequences.

Instead of pixels (ModelScope T2V on a GPU), the CPU generator diffuses a low-dimensional expression
representation, the way the dyadic-expression paper generates expression coefficients: a sequence of
M frames x 68 landmarks x 2 in the face frame, each frame's displacement from the first. The renderer
(:mod:`argen.generators.render`) then warps the identity frame along it.

**Training data** (:func:`training_tracks`). Every clip of extract_aus's rows becomes one track:

1. Frames without a face are left out (counted); a clip with fewer than ``min_frames`` detected frames
   is skipped with its reason. Missing frames inside the track are filled by linear interpolation of
   the neighbouring detected frames.
2. Landmarks go into the face frame anchored on the eye corners (:func:`argen.extract.landmarks.face_frame`
   with ``anchor="canthi"``): eyes level, centred between them, in inter-ocular units (IOD).
3. **Alignment.** In wild clips the first frame is rarely neutral. The clip's least-expressive frame
   (lowest mean intensity over :data:`CONDITION_AUS`; the first of tied frames) is its reference. If it
   lies in the clip's second half the clip is reversed in time (an expression's offset mirrors its onset;
   the reference is then the last of tied frames), so the track runs from the reference onwards; that
   part is resampled linearly to M frames. Motion is every frame's landmarks
   minus the reference's, so frame 1 is exactly zero, as the generated video's frame 1 is the identity.
4. **Condition**: the AU change the clip shows, taken against the same reference frame: at the track's
   most expressive frame, (AU - AU_reference) / 5 clipped to [0, 1], AUs below ``cond_min`` zeroed and
   only the ``cond_max_aus`` strongest kept, so that a training condition looks like a prompt (a few
   AUs with an intensity r in [0, 1], eq. 9). AU45 (blink) is no expression and is not a condition.
5. Every track is also used mirrored (x -> -x with dlib's left/right point permutation); AUs are
   bilateral, so the condition is unchanged.

**Model** (:class:`MotionDenoiser`): a small transformer over the M frame tokens in plain PyTorch, with the
diffusion timestep and the condition added to every token. Classifier-free training: the condition is
replaced by a learned null embedding with probability ``cond_dropout``. The model predicts the velocity
v = sqrt(alpha_bar) noise - sqrt(1 - alpha_bar) x0 (diffusers' ``v_prediction``; ``DDPMScheduler`` with
``squaredcos_cap_v2`` betas, 1000 steps, for training). With noise prediction, a trailing schedule's first
step (t = 999, where alpha_bar is almost 0) divides the model's error by sqrt(alpha_bar) and the sample
blew up; v-prediction stays finite there.

**Sampling** (:func:`sample_motion`): diffusers' ``DDIMScheduler`` (eta 0, ``trailing`` spacing, so a
5-step run starts from t = 999, not from a partly noised sample) with exactly T steps; at each step one
denoiser call on the batched conditional and unconditional inputs; classifier-free guidance per output
frame with eq. 12's f(m; a, b); frame 1 pinned by TI2V-Zero's replacement: before every step, the known
first frame (zero motion) noised to t replaces the generated one, and the final sample's frame 1 is the
known frame itself. The result is the last step's clean estimate (x0).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

from argen.generators.guidance import guidance_curve
from argen.aus import INTENSITY_AUS, MAX_INTENSITY
from argen.errors import InputError, UserError
from argen.extract import landmarks_of
from argen.extract.landmarks import face_frame
from argen.face import face_axes
from argen.weights import load_checked

#: AUs a motion can be conditioned on: OpenFace's intensity AUs without the blink (AU45).
CONDITION_AUS: tuple[int, ...] = tuple(au for au in INTENSITY_AUS if au != 45)
CONDITION_COLUMNS: tuple[str, ...] = tuple(f"AU{au:02d}_r" for au in CONDITION_AUS)

#: dlib's 68-point index of each point's mirror image (left and right swapped).
MIRROR: np.ndarray = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])

MODEL_FILE = "denoiser.safetensors"
CONFIG_FILE = "config.json"


class MotionModelError(UserError):
    """The motion model is missing, unreadable, or cannot be trained on the data given."""


# --- Training data -----------------------------------------------------------------------------------------

@dataclass
class Tracks:
    """Training tracks: motions (n, M, 68, 2) in IOD units, conditions (n, 16), and what was left out."""

    motions: np.ndarray
    conditions: np.ndarray
    clip_ids: list[str]
    reversed: np.ndarray            # clips whose reference lay in their second half (time-reversed)
    skipped: pd.DataFrame           # clip_id, reason
    rows_without_face: int


def condition_from_aus(delta: np.ndarray, cond_min: float, cond_max_aus: int) -> np.ndarray:
    """A prompt-like condition from AU changes (..., 16) on OpenFace's 0-5 scale (module docstring, step 4)."""
    r = np.clip(delta / MAX_INTENSITY, 0.0, 1.0)
    r = np.where(r >= cond_min, r, 0.0)
    if cond_max_aus < r.shape[-1]:
        threshold = -np.sort(-r, axis=-1)[..., cond_max_aus - 1:cond_max_aus]
        r = np.where(r >= threshold, r, 0.0)
    return r


def condition_from_prompt(prompt_aus: dict[int, float]) -> tuple[np.ndarray, list[int]]:
    """The condition vector for a prompt's AUs (r in [0, 1]) and the AUs it cannot express."""
    vector = np.zeros(len(CONDITION_AUS))
    unusable = []
    for au, r in prompt_aus.items():
        if au in CONDITION_AUS and r > 0:
            vector[CONDITION_AUS.index(au)] = min(float(r), 1.0)
        else:
            unusable.append(int(au))
    return vector, sorted(unusable)


def _resample(track: np.ndarray, n_frames: int) -> np.ndarray:
    """Linear resampling of a track (L, ...) to n_frames frames over the same span."""
    if len(track) == n_frames:
        return track.copy()
    position = np.linspace(0, len(track) - 1, n_frames)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, len(track) - 1)
    weight = (position - low).reshape(-1, *([1] * (track.ndim - 1)))
    return track[low] * (1 - weight) + track[high] * weight


def _interpolate_missing(frame_index: np.ndarray, detected: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Values (n, d) at every frame of ``frame_index`` from those of the detected frames (linear, held at ends)."""
    flat = values.reshape(len(values), -1)
    out = np.stack([np.interp(frame_index, frame_index[detected], flat[detected, k]) for k in range(flat.shape[1])],
                   1)
    return out.reshape(len(frame_index), *values.shape[1:])


def training_tracks(frames: pd.DataFrame, n_frames: int = 16, min_frames: int = 8, cond_min: float = 0.2,
                    cond_max_aus: int = 5, mirror: bool = True) -> Tracks:
    """Motion tracks and their conditions from extract_aus rows (module docstring, training data).

    Args:
        frames: extract_aus rows (clip_id, frame, success, landmarks, AU intensities).
        n_frames: M, the frames of every track.
        min_frames: detected frames a clip needs to give a track.
        cond_min, cond_max_aus: how a clip's AU change becomes a prompt-like condition.
        mirror: also add every track mirrored left to right.
    """
    motions, conditions, clip_ids, flipped, skipped = [], [], [], [], []
    rows_without_face = int((~frames.success.astype(bool)).sum())
    for clip_id, rows in frames.groupby("clip_id", sort=True):
        rows = rows.sort_values("frame")
        detected = rows.success.to_numpy(bool)
        if detected.sum() < min_frames:
            skipped.append((clip_id, f"{int(detected.sum())} frames with a face, fewer than min_frames={min_frames}"))
            continue
        index = rows.frame.to_numpy(float)
        found = rows[detected]
        shapes = _interpolate_missing(index, detected,
                                      _scatter(face_frame(landmarks_of(found), anchor="canthi"), detected))
        aus = _interpolate_missing(index, detected, _scatter(found[list(CONDITION_COLUMNS)].to_numpy(float),
                                                             detected))
        level = aus.mean(axis=1)
        reference = int(np.argmin(level))
        reverse = reference > (len(rows) - 1) / 2
        if reverse:  # on a tie the latest least-expressive frame: the longest track
            shapes, aus, reference = shapes[::-1], aus[::-1], int(np.argmin(level[::-1]))
        shapes, aus = shapes[reference:], aus[reference:]
        if len(shapes) < 2:
            skipped.append((clip_id, "the least-expressive frame is the clip's only frame"))
            continue
        track = _resample(shapes, n_frames)
        delta_aus = aus - aus[0]
        apex = int(np.argmax(delta_aus.mean(axis=1)))
        motions.append(track - track[:1])
        conditions.append(condition_from_aus(delta_aus[apex], cond_min, cond_max_aus))
        clip_ids.append(str(clip_id))
        flipped.append(reverse)
    motions_array = np.asarray(motions, dtype=np.float64).reshape(-1, n_frames, 68, 2)
    conditions_array = np.asarray(conditions, dtype=np.float64).reshape(-1, len(CONDITION_AUS))
    if mirror and len(motions_array):
        mirrored = motions_array[:, :, MIRROR] * np.array([-1.0, 1.0])
        motions_array = np.concatenate([motions_array, mirrored])
        conditions_array = np.concatenate([conditions_array, conditions_array])
    return Tracks(motions=motions_array, conditions=conditions_array, clip_ids=clip_ids,
                  reversed=np.asarray(flipped, bool), skipped=pd.DataFrame(skipped, columns=["clip_id", "reason"]),
                  rows_without_face=rows_without_face)


def _scatter(values: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """Detected frames' values placed at their rows of the full clip (NaN elsewhere)."""
    out = np.full((len(detected), *values.shape[1:]), np.nan)
    out[detected] = values
    return out


# --- Model -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MotionModelConfig:
    """Architecture, diffusion and data scale of a motion model (stored beside its weights)."""

    n_frames: int = 16
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    data_scale: float = 1.0          # IOD units per model unit: the training motions' standard deviation
    condition_aus: tuple[int, ...] = CONDITION_AUS
    training: dict = field(default_factory=dict)

    def ddpm(self) -> DDPMScheduler:
        """The training noise schedule."""
        return DDPMScheduler(num_train_timesteps=self.train_timesteps, beta_schedule=self.beta_schedule,
                             prediction_type="v_prediction", clip_sample=False)

    def ddim(self) -> DDIMScheduler:
        """The sampling schedule: the training betas, eta 0, trailing spacing."""
        return DDIMScheduler(num_train_timesteps=self.train_timesteps, beta_schedule=self.beta_schedule,
                             prediction_type="v_prediction", clip_sample=False, set_alpha_to_one=True,
                             timestep_spacing="trailing")


def timestep_embedding(timesteps: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding (B, dim) of diffusion timesteps (B,)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    angles = timesteps.float()[:, None] * frequencies[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class MotionDenoiser(nn.Module):
    """Predicts the velocity v of a noisy motion sequence (B, M, 68, 2) given the timestep and the AU condition."""

    def __init__(self, config: MotionModelConfig) -> None:
        super().__init__()
        d = config.d_model
        self.config = config
        self.input = nn.Linear(136, d)
        self.position = nn.Parameter(torch.zeros(1, config.n_frames, d))
        self.time = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.condition = nn.Sequential(nn.Linear(len(config.condition_aus), d), nn.SiLU(), nn.Linear(d, d))
        self.null_condition = nn.Parameter(torch.zeros(d))
        layer = nn.TransformerEncoderLayer(d, config.n_heads, dim_feedforward=2 * d, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.output = nn.Linear(d, 136)
        nn.init.normal_(self.position, std=0.02)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, sample: torch.Tensor, timesteps: torch.Tensor, condition: torch.Tensor,
                use_condition: torch.Tensor) -> torch.Tensor:
        """Args: sample (B, M, 68, 2); timesteps (B,); condition (B, 16); use_condition (B,) bool.

        Returns the predicted velocity (B, M, 68, 2). Rows with ``use_condition`` False get the null
        condition (the unconditional branch of classifier-free guidance).
        """
        batch, frames = sample.shape[:2]
        tokens = self.input(sample.reshape(batch, frames, 136)) + self.position[:, :frames]
        cond = torch.where(use_condition[:, None], self.condition(condition), self.null_condition[None])
        tokens = tokens + (self.time(timestep_embedding(timesteps, tokens.shape[-1])) + cond)[:, None]
        return self.output(self.norm(self.blocks(tokens))).reshape(batch, frames, 68, 2)


@dataclass
class MotionModel:
    """A trained denoiser with its config."""

    denoiser: MotionDenoiser
    config: MotionModelConfig

    def save(self, folder: Path) -> None:
        """Write ``denoiser.safetensors`` and ``config.json`` into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.denoiser.state_dict().items()}
        save_file(state, str(folder / MODEL_FILE), metadata={"format": "pt"})
        (folder / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n")

    @staticmethod
    def load(folder: Path | str) -> "MotionModel":
        """Read a model written by :meth:`save`.

        Raises:
            MotionModelError: the folder or a file is missing or does not hold a motion model.
        """
        folder = Path(folder)
        missing = [name for name in (MODEL_FILE, CONFIG_FILE) if not (folder / name).is_file()]
        if missing:
            raise MotionModelError(f"{folder}: no motion model ({', '.join(missing)} missing); the motion_model "
                                   f"stage writes it (dvc repro motion_model)")
        try:
            raw = json.loads((folder / CONFIG_FILE).read_text())
            raw["condition_aus"] = tuple(raw["condition_aus"])
            config = MotionModelConfig(**raw)
            denoiser = MotionDenoiser(config)
        except (ValueError, TypeError, KeyError, OSError) as err:
            raise MotionModelError(f"{folder / CONFIG_FILE}: not a readable motion model config ({err}); re-run "
                                   "the stage that makes it: dvc repro --force motion_model") from None
        try:
            denoiser.load_state_dict(load_checked(folder / MODEL_FILE, "motion_model", denoiser.state_dict()))
        except InputError as err:
            raise MotionModelError(str(err)) from None
        denoiser.eval()
        return MotionModel(denoiser, config)


# --- Training ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainingSettings:
    """How the denoiser is trained (the ``motion_model`` params)."""

    steps: int = 3000
    batch_size: int = 64
    lr: float = 1e-3
    cond_dropout: float = 0.1
    seed: int = 0


def train_motion_model(tracks: Tracks, config: MotionModelConfig, settings: TrainingSettings,
                       on_step=None) -> tuple[MotionModel, list[float]]:
    """Train the denoiser on ``tracks``; return the model and the loss per step.

    Seeded: the same tracks, config and settings give the same weights on the same machine.
    ``on_step(step, loss)`` is called every step (logging, DVCLive).
    """
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    scale = float(tracks.motions[:, 1:].std()) or 1.0
    config = MotionModelConfig(**{**asdict(config), "data_scale": scale})
    denoiser = MotionDenoiser(config)
    scheduler = config.ddpm()
    data = torch.tensor(tracks.motions / scale, dtype=torch.float32)
    conditions = torch.tensor(tracks.conditions, dtype=torch.float32)
    optimiser = torch.optim.AdamW(denoiser.parameters(), lr=settings.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, settings.steps, eta_min=settings.lr / 20)
    losses = []
    denoiser.train()
    for step in tqdm(range(settings.steps), desc="motion model", unit="step", mininterval=2.0):
        batch = torch.from_numpy(rng.integers(0, len(data), settings.batch_size))
        clean = data[batch]
        noise = torch.from_numpy(rng.standard_normal(clean.shape).astype(np.float32))
        timesteps = torch.from_numpy(rng.integers(0, config.train_timesteps, settings.batch_size))
        keep = torch.from_numpy(rng.random(settings.batch_size) >= settings.cond_dropout)
        noisy = scheduler.add_noise(clean, noise, timesteps)
        target = scheduler.get_velocity(clean, noise, timesteps)
        loss = nn.functional.mse_loss(denoiser(noisy, timesteps, conditions[batch], keep), target)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step, losses[-1])
    denoiser.eval()
    return MotionModel(denoiser, config), losses


# --- Sampling ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MotionGuidance:
    """Classifier-free guidance bounds of the motion model (eq. 12's f(m; a, b) with its own g range)."""

    g_min: float = 0.0
    g_max: float = 8.0
    form: str = "paper"


@torch.no_grad()
def sample_motion(model: MotionModel, condition: np.ndarray, steps: int, a: float, b: float,
                  guidance: MotionGuidance, seed: int) -> tuple[np.ndarray, dict]:
    """A motion (M, 68, 2) in IOD units, frame 1 zero, for one AU condition (module docstring, sampling).

    Args:
        model: the trained denoiser.
        condition: (16,) AU intensities r in [0, 1] in :data:`CONDITION_AUS` order.
        steps: T, the DDIM steps run (one denoiser call each).
        a, b: the guidance curve's shape.
        guidance: g bounds and form.
        seed: the noise seed (initial noise and the replacement's noise).

    Returns:
        (motion, record with steps_run, denoiser_calls, guidance per frame).
    """
    config = model.config
    frames = config.n_frames
    generator = torch.Generator().manual_seed(int(seed))
    scheduler = model.config.ddim()
    scheduler.set_timesteps(int(steps))
    scale = guidance_curve(np.arange(1, frames + 1), frames, a, b, guidance.g_min, guidance.g_max, guidance.form)
    g = torch.tensor(scale, dtype=torch.float32).reshape(1, frames, 1, 1)
    cond = torch.tensor(condition, dtype=torch.float32)[None].repeat(2, 1)
    use = torch.tensor([True, False])
    known = torch.zeros(1, 1, 68, 2)
    sample = torch.randn(1, frames, 68, 2, generator=generator)
    calls = 0
    for t in scheduler.timesteps:
        noise = torch.randn(1, 1, 68, 2, generator=generator)
        sample[:, :1] = scheduler.add_noise(known, noise, t.reshape(1))
        velocity = model.denoiser(sample.repeat(2, 1, 1, 1), t.repeat(2), cond, use)
        calls += 1
        v_cond, v_uncond = velocity.chunk(2)
        step = scheduler.step(v_uncond + g * (v_cond - v_uncond), t, sample)
        sample = step.prev_sample
    # The last step's clean estimate: with T not dividing 1000, the trailing grid's last step lands on
    # t = 0 (alpha_bar < 1, a trace of noise left), not on the clean sample.
    sample = step.pred_original_sample
    sample[:, :1] = known
    motion = sample[0].double().numpy() * config.data_scale
    record = {"steps_run": len(scheduler.timesteps), "denoiser_calls": calls,
              "guidance": [round(float(v), 4) for v in scale]}
    return motion, record


def motion_to_pixels(motion: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Pixel landmarks (M, 68, 2): the identity's landmarks moved by a face-frame motion (M, 68, 2)."""
    _, x_axis, y_axis, iod = face_axes(landmarks, anchor="canthi")
    return landmarks[None] + (motion * iod) @ np.stack([x_axis, y_axis])
