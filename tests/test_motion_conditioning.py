"""What the motion generator must never lose: the guidance floor (no action yields the unconditional model),
the text condition (a prompt without AU codes moves the face in its emotion's direction; the emotion word
reaches the model), and its independence from the demo's renderer (no import of ``argen.demo``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from argen.generators.factory import GenerationInput, MotionVideoGenerator, motion_guidance
from argen.generators.guidance import guidance_curve
from argen.generators.motion import (
    CONDITION_AUS, CONDITION_DIM, MotionGuidance, MotionModelConfig, TrainingSettings, Tracks, apex_au_change,
    condition_from_aus, kb_conditions, minilm_encoder, motion_condition, sample_motion, train_motion_model,
    with_kb_conditions,
)
from argen.asi.kb import prompt_aus_from_line
from argen.actions import ACTIONS
from argen.asi.prompts import FIXED_PROMPT
from argen.extract.landmarks import face_frame
from argen.params import GeneratorParams
from tests.test_motion import base_face, face_item, oracle_model
from tests.test_stage_deps import ROOT, code_closure

FRAMES = 6


# --- The guidance floor ------------------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["paper", "peak", "constant"])
def test_no_action_yields_the_unconditional_motion(form: str) -> None:
    """With the default ``generator`` guidance, every frame of every action keeps at least the conditional motion.

    The oracle denoiser's clean answers are known (``target`` with the condition, ``unconditional`` without),
    so a sampled frame sits g times the conditional-minus-unconditional step away from the unconditional
    motion: at g = 0 (the old floor) the last frame of every paper-form action was the unconditional one.
    """
    rng = np.random.default_rng(0)
    target, unconditional = rng.normal(size=(2, 8, 68, 2))
    model = oracle_model(target, unconditional, scale=1.0)
    guidance = motion_guidance(GeneratorParams(guidance_form=form))
    condition = np.eye(CONDITION_DIM)[0]
    step = np.linalg.norm((target - unconditional)[1:], axis=(1, 2))  # the conditional model's own departure
    for steps, a, b in ACTIONS:
        motion, record = sample_motion(model, condition, steps, a, b, guidance, seed=1)
        away = np.linalg.norm((motion - unconditional)[1:], axis=(1, 2))
        assert np.all(away >= 0.999 * step), (steps, a, b, record["guidance"])
        assert min(record["guidance"]) >= 1.0


def test_a_floor_below_the_conditional_model_is_refused() -> None:
    with pytest.raises(ValueError, match="below the conditional model"):
        MotionGuidance(g_min=0.0, g_max=3.0)
    with pytest.raises(ValidationError, match="motion_g_min"):
        GeneratorParams(motion_g_min=0.5)
    # the docstring's mapping: the paper's (7, 11) onto (3, 5), the floor above the conditional model, as the paper's
    defaults = GeneratorParams()
    bounds = (defaults.motion_g_min, defaults.motion_g_max)
    assert bounds == (MotionGuidance().g_min, MotionGuidance().g_max) == (3.0, 5.0)
    g = guidance_curve(np.arange(1, 17), 16, 2.0, 2.0, defaults.motion_g_min, defaults.motion_g_max)
    assert g.min() == pytest.approx(3.0) and g.max() <= defaults.motion_g_max


# --- The text condition ------------------------------------------------------------------------------------

#: Synthetic expressions in the face frame (IOD units, y down): point indices, displacement at the apex.
EXPRESSIONS: dict[str, list[tuple[list[int], tuple[float, float]]]] = {
    "disgust": [([31, 32, 33, 34, 35], (0.0, -0.09)), ([48, 49, 50, 51, 52, 53, 54, 60, 61, 62, 63, 64], (0.0, -0.12))],
    "fear": [(list(range(17, 27)), (0.0, -0.14)), ([48, 59, 60, 67], (-0.09, 0.0)), ([54, 55, 64, 65], (0.09, 0.0))],
    "happy": [([48, 60], (-0.08, -0.08)), ([54, 64], (0.08, -0.08))],
}
#: The AUs each synthetic expression moves (the landmark estimator's reading of it).
DIRECTION = {"disgust": (9, 10), "fear": (1, 2, 20)}


def expression_tracks(per_emotion: int = 24, seed: int = 0, expressions: dict | None = None) -> Tracks:
    """Tracks of the synthetic expressions: onset ramps of random amplitude with landmark jitter."""
    rng = np.random.default_rng(seed)
    neutral = face_frame(base_face()[None], anchor="canthi")[0]
    ramp = np.linspace(0.0, 1.0, FRAMES)[:, None, None]
    motions, labels = [], []
    for emotion, moves in (expressions or EXPRESSIONS).items():
        apex = np.zeros((68, 2))
        for points, shift in moves:
            apex[points] = shift
        for _ in range(per_emotion):
            jitter = rng.normal(scale=0.005, size=(FRAMES, 68, 2))
            jitter[0] = 0.0
            motions.append(ramp * apex * rng.uniform(0.7, 1.3) + jitter)
            labels.append(emotion)
    motions = np.asarray(motions)
    conditions = condition_from_aus(apex_au_change(motions, neutral), cond_min=0.2, cond_max_aus=5)
    return Tracks(motions=motions, conditions=conditions, labels=labels, clip_ids=[], reversed=np.zeros(0, bool),
                  skipped=None, rows_without_face=0, neutral=neutral)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The models are tiny: one thread is as fast, and is not stalled when another process holds a core (the
    module's training took 13 s beside one busy process and 185 s beside a dvc repro on 2 cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(one_torch_thread) -> tuple:
    """A small model trained on the synthetic expressions with the real text encoder (MiniLM, local)."""
    tracks = expression_tracks()
    config = MotionModelConfig(n_frames=FRAMES, d_model=32, n_layers=2, n_heads=2)
    model, _ = train_motion_model(tracks, config, TrainingSettings(steps=600, batch_size=32, lr=2e-3, seed=0),
                                  minilm_encoder)
    return model, tracks


def generated_change(model, tracks: Tracks, prompt: str, aus: dict[int, float], samples: int = 6) -> np.ndarray:
    condition, _ = motion_condition(prompt, aus, minilm_encoder)
    guidance = motion_guidance(GeneratorParams())
    motions = np.stack([sample_motion(model, condition, 10, 2.0, 2.0, guidance, seed)[0] for seed in range(samples)])
    return apex_au_change(motions, tracks.neutral).mean(axis=0)


def au_sum(change: np.ndarray, aus: tuple[int, ...]) -> float:
    return float(sum(change[CONDITION_AUS.index(au)] for au in aus))


@pytest.mark.parametrize("emotion, other", [("disgust", "fear"), ("fear", "disgust")])
def test_a_prompt_without_au_codes_moves_the_face_in_its_emotions_direction(trained, emotion, other) -> None:
    """The fixed prompt (no AU code, the "w/o ASI" ablation) gives its emotion's apex AU change, not a still."""
    model, tracks = trained
    labels = np.asarray(tracks.labels)
    real = apex_au_change(tracks.motions[labels == emotion], tracks.neutral).mean(axis=0)
    generated = generated_change(model, tracks, FIXED_PROMPT.format(emotion=emotion), {})
    own, others = au_sum(generated, DIRECTION[emotion]), au_sum(generated, DIRECTION[other])
    assert own >= 0.5 * au_sum(real, DIRECTION[emotion]), (own, au_sum(real, DIRECTION[emotion]))
    assert own > 3 * others, (own, others)


def test_the_generator_animates_a_prompt_without_au_codes(trained) -> None:
    model, _ = trained
    generator = MotionVideoGenerator(model, motion_guidance(GeneratorParams()), size=96, encoder=minilm_encoder)
    item: GenerationInput = face_item({}, FIXED_PROMPT.format(emotion="fear"))
    video, record = generator.generate(item, (10, 2.0, 3.0), seed=0, n_frames=FRAMES)
    assert not record["still"] and record["denoiser_calls"] == 10
    change = np.abs(video[-1].astype(int) - video[0].astype(int))
    assert change.max() > 40 and (change.max(axis=2) > 10).sum() > 50  # the face moved visibly


def test_the_emotion_word_reaches_the_model(trained) -> None:
    """Two prompts that differ only in the emotion word (same AU phrases, same AU vector) give different motions."""
    model, tracks = trained
    aus = {25: 0.5}
    disgust = generated_change(model, tracks, "Identity: a man; Expression: disgust; lips parted moderately.", aus)
    fear = generated_change(model, tracks, "Identity: a man; Expression: fear; lips parted moderately.", aus)
    assert au_sum(disgust, DIRECTION["disgust"]) > au_sum(fear, DIRECTION["disgust"]) + 0.5
    assert au_sum(fear, DIRECTION["fear"]) > au_sum(disgust, DIRECTION["fear"]) + 0.5


# --- Prompts citing the knowledge base -----------------------------------------------------------------------

#: The real-data failure in miniature: the measured fear apex shows the stretched lips (AU20) only, surprise
#: raises the brows (AU1, AU2) and drops the jaw, and the knowledge base's fear entry (the literature's)
#: cites the raised brows with the stretched lips.
KB_EXPRESSIONS = {"surprise": [(list(range(17, 27)), (0.0, -0.14)),
                               ([5, 6, 7, 8, 9, 10, 11, 55, 56, 57, 58, 59, 65, 66, 67], (0.0, 0.2))],
                  "fear": [([48, 59, 60, 67], (-0.1, 0.0)), ([54, 55, 64, 65], (0.1, 0.0))]}
FEAR_KB_LINE = "inner brows raised clearly (AU01), outer brows raised clearly (AU02), lips stretched sideways clearly (AU20)"
FEAR_KB_PROMPT = "Identity: a man; Expression: fear; inner brows raised clearly, outer brows raised clearly, " \
                 "lips stretched sideways clearly."


def test_kb_conditions_read_entries_as_prompts_are_read() -> None:
    kb = pd.DataFrame({"emotion": ["fear", "fear", "disgust"],
                       "description": [FEAR_KB_LINE, "lower lip pulled down clearly (AU16)", "nose wrinkled strongly (AU09)"]})
    conditions = kb_conditions(kb)
    assert sorted(conditions) == ["disgust", "fear"] and len(conditions["fear"]) == 1  # AU16 alone: no vector
    expected = {CONDITION_AUS[k]: r for k, r in enumerate(conditions["fear"][0]) if r}
    assert expected == prompt_aus_from_line(FEAR_KB_LINE) == {1: 0.625, 2: 0.625, 20: 0.625}


def test_kb_copies_pair_each_scarce_track_with_its_emotions_entries() -> None:
    tracks = expression_tracks(per_emotion=4, expressions={**KB_EXPRESSIONS, "happy": EXPRESSIONS["happy"]})
    conditions = {"fear": [np.eye(len(CONDITION_AUS))[0], np.eye(len(CONDITION_AUS))[1]]}
    copied = with_kb_conditions(tracks, conditions, seed=0)
    n = len(tracks.motions)
    fear = [k for k, label in enumerate(tracks.labels) if label == "fear"]
    assert copied.kb_copies == len(fear) == 4 and len(copied.motions) == n + 4
    assert copied.labels[n:] == ["fear"] * 4 and np.array_equal(copied.motions[n:], tracks.motions[fear])
    assert np.array_equal(copied.conditions[:n], tracks.conditions)
    assert all(any(np.array_equal(c, v) for v in conditions["fear"]) for c in copied.conditions[n:])
    again = with_kb_conditions(tracks, conditions, seed=0)
    assert np.array_equal(again.conditions, copied.conditions)  # seeded


def test_a_prompt_citing_the_kb_gets_its_emotions_motion(one_torch_thread) -> None:
    """Trained with KB copies, the fear prompt that cites the literature's brows stretches the lips as the real
    fear tracks do and does not raise the brows as surprise does (without the copies it took surprise's brows)."""
    tracks = expression_tracks(expressions=KB_EXPRESSIONS)
    kb = pd.DataFrame({"emotion": ["fear"], "description": [FEAR_KB_LINE]})
    config = MotionModelConfig(n_frames=FRAMES, d_model=32, n_layers=2, n_heads=2)
    model, _ = train_motion_model(with_kb_conditions(tracks, kb_conditions(kb), seed=0), config,
                                  TrainingSettings(steps=600, batch_size=32, lr=2e-3, class_balance=1.0, seed=0),
                                  minilm_encoder)
    labels = np.asarray(tracks.labels)
    real = {e: apex_au_change(tracks.motions[labels == e], tracks.neutral).mean(axis=0) for e in KB_EXPRESSIONS}
    generated = generated_change(model, tracks, FEAR_KB_PROMPT, prompt_aus_from_line(FEAR_KB_LINE))
    brows, lips = (1, 2), (20,)
    assert au_sum(generated, lips) >= 0.5 * au_sum(real["fear"], lips), (generated, real["fear"])
    assert au_sum(generated, brows) < 0.3 * au_sum(real["surprise"], brows), (generated, real["surprise"])


# --- Independence from the demo ----------------------------------------------------------------------------

def generator_modules() -> list[Path]:
    """Every module of the generators' package."""
    return sorted((ROOT / "argen" / "generators").glob("*.py"))


def test_the_generators_import_nothing_from_the_demo() -> None:
    """The demo's renderer is the oracle and the floor, never a generator's knowledge: no generator module,
    nor anything it imports (lazy imports included), is under argen/demo/."""
    reached = set()
    for module in generator_modules():
        closure = code_closure(module)
        reached |= closure
        demo = sorted(p for p in closure if p.startswith("argen/demo/"))
        assert not demo, f"{module.relative_to(ROOT)} imports {demo}"
    # the walk reaches the motion model and the renderer (the module that imported argen.demo before)
    assert {Path(p).name for p in reached} >= {"motion.py", "render.py", "warp.py"}
