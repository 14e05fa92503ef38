"""Prompt generation for every identity x scarce emotion (paper sec. 3.2, eq. 8-9, figure 4, supp. G).

Modes (``asi.mode``, the paper's table 5 ablation):

* ``fixed``: TI2V-Zero's style, ``A person with the expression of slight {emotion}``; no model, no AUs.
* ``vlm_only``: the composer gets figure 4's instruction and the identity image, no knowledge base.
* ``vlm_rag`` (default): the instruction also lists the k retrieved knowledge-base descriptions, each AU
  with its intensity adverb (eq. 9).

Every composed line is verified (:mod:`argen.asi.verify`). Lines that are not usable (malformed, wrong
emotion, fewer than two AUs, or hallucinated AUs) are handled by ``on_hallucination``: ``regenerate``
composes them again (up to ``max_tries`` in all, new seed each time); ``drop`` removes the clauses that
cite hallucinated AUs. What is still unusable after that is replaced by the emotion's EMFACS prototype in
the template format, recorded as ``fallback_prototype``. X_T is the final line with AU codes removed.

An emotion the knowledge base has no entry for (``au_kb.data_check`` left out every one: the training clips
show its AUs in other emotions) gets ``Identity: <cues>; Expression: <emotion>.`` in every mode but
``fixed``, recorded as ``emotion_only``: no AU is cited, so none can be hallucinated, and the composer is not
asked (a VLM would cite AUs that no entry supports).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import pandas as pd

from argen.asi.facs import FacsTable, load_facs
from argen.asi.retrieval import retrieve
from argen.asi.template import compose_line, identity_cues, template_aus
from argen.asi.verify import Verification, cited_aus, drop_aus, strip_au_tags, verify
from argen.extract import landmarks_of

log = logging.getLogger(__name__)

#: Figure 4's instruction to the VLM.
INSTRUCTION = ("From a neutral face image, produce one sentence that preserves identity (gender presentation, "
               "hairstyle, skin tone, etc.) and only describes the expression changes expected for the target "
               "emotion, citing at least two Action Units (AUs). Skip unverifiable details and use this exact "
               "format: \"Identity: [identity cues]; Expression: [target emotion]; [specific changes (AU codes)]\"")
FIXED_PROMPT = "A person with the expression of slight {emotion}"


@dataclass
class PromptRequest:
    """One identity x emotion to write a prompt for."""

    identity_id: str
    emotion: str
    image: np.ndarray
    landmarks: np.ndarray  # (68, 2) of the identity frame: places the identity-cue regions
    seed: int
    retrieved_ids: list[str] = field(default_factory=list)
    retrieved: list[dict[int, float]] = field(default_factory=list)
    retrieved_descriptions: list[str] = field(default_factory=list)
    cues: str | None = None  # the identity cues in words (build_requests reads them once per identity)

    def identity_text(self) -> str:
        """The ``Identity:`` field of a template line: :func:`identity_cues` of the image, read once."""
        if self.cues is None:
            self.cues = identity_cues(self.image, self.landmarks)
        return self.cues

    def without_retrieval(self) -> PromptRequest:
        """The same request with nothing retrieved (the ``vlm_only`` measurement)."""
        return replace(self, retrieved_ids=[], retrieved=[], retrieved_descriptions=[])

    @property
    def instruction(self) -> str:
        """Figure 4's instruction for this emotion, with the retrieved descriptions when there are any."""
        text = f"{INSTRUCTION}\nTarget emotion: {self.emotion}."
        if self.retrieved_descriptions:
            listed = "\n".join(f"{k + 1}. {d}" for k, d in enumerate(self.retrieved_descriptions))
            text += (f"\nFacial action units observed for {self.emotion} (use only these AUs, with their "
                     f"intensity words):\n{listed}")
        return text


class Composer(Protocol):
    """A prompt backend: one line per request."""

    name: str

    def compose(self, requests: list[PromptRequest], attempt: int) -> list[str]:
        """Compose one line per request; ``attempt`` counts regenerations (changes the sampling seed)."""


class TemplateComposer:
    """The ``template`` backend (see :mod:`argen.asi.template`)."""

    name = "template"

    def __init__(self, facs: FacsTable, max_aus: int) -> None:
        self.facs = facs
        self.max_aus = max_aus

    def compose(self, requests: list[PromptRequest], attempt: int) -> list[str]:
        lines = []
        for request in requests:
            rng = np.random.default_rng([request.seed, attempt])
            aus = template_aus(request.emotion, request.retrieved, self.facs, rng, self.max_aus)
            lines.append(compose_line(request.identity_text(), request.emotion, aus, self.facs))
        return lines


class VLMComposer:
    """The ``qwen2_5_vl`` backend: batched sampling from the vision-language model."""

    name = "qwen2_5_vl"

    def __init__(self, model, seed: int) -> None:
        self.model = model
        self.seed = seed

    def compose(self, requests: list[PromptRequest], attempt: int) -> list[str]:
        return self.model.generate([r.image for r in requests], [r.instruction for r in requests],
                                   seed=self.seed + 7919 * attempt)


def make_composer(asi, seed: int) -> Composer:
    """The composer ``asi.backend`` names (the VLM loads its local weights here, or fails naming the path)."""
    if asi.backend == "qwen2_5_vl":
        from argen.asi.vlm import QwenVLBackend

        return VLMComposer(QwenVLBackend.from_params(asi), seed)
    return TemplateComposer(load_facs(), asi.max_aus)


def build_requests(identities: pd.DataFrame, images: dict[str, np.ndarray], kb: pd.DataFrame, emotions: list[str],
                   mode: str, k: int, strategy: str, seed: int) -> list[PromptRequest]:
    """One request per identity x emotion, with retrieval (seeded per request) in ``vlm_rag`` mode.

    An emotion without a knowledge-base entry retrieves nothing (its prompts are ``emotion_only``).
    """
    requests = []
    all_landmarks = landmarks_of(identities)
    for i, row in enumerate(identities.itertuples()):
        cues = identity_cues(images[row.clip_id], all_landmarks[i])  # once per identity, not per emotion
        for j, emotion in enumerate(emotions):
            request_seed = int(np.random.SeedSequence([seed, i, j]).generate_state(1)[0])
            request = PromptRequest(row.clip_id, emotion, images[row.clip_id], all_landmarks[i], request_seed,
                                    cues=cues)
            if mode == "vlm_rag" and (kb.emotion == emotion).any():
                entries = retrieve(kb, emotion, k, np.random.default_rng(request_seed), strategy)
                request.retrieved_ids = entries.entry_id.tolist()
                request.retrieved = [dict(zip(e.aus, e.intensities)) for e in entries.itertuples()]
                request.retrieved_descriptions = entries.description.tolist()
            requests.append(request)
    return requests


def _prototype_line(request: PromptRequest, kb: pd.DataFrame, facs: FacsTable) -> str:
    entries = kb[(kb.emotion == request.emotion) & (kb.kind == "prototype")]
    entries = entries if len(entries) else kb[kb.emotion == request.emotion]
    aus = dict(zip(entries.aus.iloc[0], entries.intensities.iloc[0]))
    return compose_line(request.identity_text(), request.emotion, aus, facs)


def generate_prompts(requests: list[PromptRequest], composer: Composer, kb: pd.DataFrame, facs: FacsTable,
                     on_hallucination: str, max_tries: int) -> pd.DataFrame:
    """Compose, verify and repair one prompt per request (module docstring); one row per request."""
    allowed = {e: set().union(*kb[kb.emotion == e].aus.map(set)) for e in kb.emotion.unique()}

    def check(request: PromptRequest, text: str) -> Verification:
        retrieved = set().union(*(set(r) for r in request.retrieved)) if request.retrieved else set()
        return verify(text, request.emotion, allowed.get(request.emotion, set()), retrieved, facs)

    first: dict[int, tuple[str, Verification]] = {}
    latest: dict[int, tuple[str, Verification, int]] = {}
    pending = [i for i, request in enumerate(requests) if request.emotion in allowed]
    tries = max_tries if on_hallucination == "regenerate" else 1
    for attempt in range(tries):
        if not pending:
            break
        texts = composer.compose([requests[i] for i in pending], attempt)
        for i, text in zip(pending, texts):
            result = check(requests[i], text)
            first.setdefault(i, (text, result))
            latest[i] = (text, result, attempt + 1)
        pending = [i for i in pending if not latest[i][1].usable]

    rows = []
    for i, request in enumerate(requests):
        if request.emotion not in allowed:
            text = compose_line(request.identity_text(), request.emotion, {}, facs)
            rows.append(_prompt_row(request, composer.name, text, text, Verification(True, True), 0, "emotion_only"))
            continue
        text, result, used = latest[i]
        action = "accepted" if used == 1 else "regenerated"
        if not result.usable and result.format_ok and result.emotion_ok and result.hallucinated:
            text = drop_aus(text, set(result.invalid) | set(result.contradictory))
            result, action = check(request, text), "dropped_aus"
        if not result.usable:
            text = _prototype_line(request, kb, facs)
            result, action = check(request, text), "fallback_prototype"
        first_text, first_result = first[i]
        rows.append(_prompt_row(request, composer.name, first_text, text, first_result, used, action))
    return pd.DataFrame(rows)


def _prompt_row(request: PromptRequest, backend: str, first_text: str, text: str, first_result: Verification,
                tries: int, action: str) -> dict:
    """One row of the prompts table: the final line, X_T and the first attempt's verification."""
    return {
        "identity_id": request.identity_id, "emotion": request.emotion, "backend": backend,
        "retrieved_entries": request.retrieved_ids,
        "retrieved_aus": sorted(set().union(*(set(r) for r in request.retrieved))) if request.retrieved else [],
        "raw_first": first_text, "raw_final": text, "prompt": strip_au_tags(text),
        "cited_aus": cited_aus(text), "first_cited_aus": first_result.cited,
        "first_invalid_aus": first_result.invalid, "first_contradictory_aus": first_result.contradictory,
        "first_format_ok": first_result.format_ok and first_result.emotion_ok,
        "first_hallucinated": first_result.hallucinated, "precision": first_result.precision,
        "recall": first_result.recall, "f1": first_result.f1, "tries": tries, "action": action,
    }


def fixed_prompts(identities: pd.DataFrame, emotions: list[str]) -> pd.DataFrame:
    """The ``fixed`` mode: TI2V-Zero's prompt, no AUs, nothing to verify."""
    rows = [{"identity_id": cid, "emotion": e, "backend": "none", "retrieved_entries": [], "retrieved_aus": [],
             "raw_first": "", "raw_final": "", "prompt": FIXED_PROMPT.format(emotion=e), "cited_aus": [],
             "first_cited_aus": [], "first_invalid_aus": [], "first_contradictory_aus": [], "first_format_ok": True,
             "first_hallucinated": False, "precision": np.nan, "recall": np.nan, "f1": np.nan, "tries": 0,
             "action": "fixed"} for cid in identities.clip_id for e in emotions]
    return pd.DataFrame(rows)


def hallucination_metrics(prompts: pd.DataFrame) -> dict[str, float]:
    """First-attempt hallucination figures of the composed prompts (``tries`` > 0; ``emotion_only`` and
    ``fixed`` ones are not composed): per prompt, per cited AU, format failures, AU P/R/F1."""
    composed = prompts[prompts.tries > 0]
    cited = composed.first_cited_aus.map(len).sum()
    bad = (composed.first_invalid_aus.map(len) + composed.first_contradictory_aus.map(len)).sum()
    return {
        "prompts": len(prompts),
        "composed": len(composed),
        "hallucination_rate": round(float(composed.first_hallucinated.mean()), 4) if len(composed) else 0.0,
        "hallucinated_au_rate": round(float(bad / cited), 4) if cited else 0.0,
        "format_failure_rate": round(float((~composed.first_format_ok).mean()), 4) if len(composed) else 0.0,
        "au_precision": round(float(composed.precision.mean()), 4) if composed.precision.notna().any() else None,
        "au_recall": round(float(composed.recall.mean()), 4) if composed.recall.notna().any() else None,
        "au_f1": round(float(composed.f1.mean()), 4) if composed.f1.notna().any() else None,
    }
