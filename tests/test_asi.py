"""Affective semantic injection: FACS table, knowledge base, retrieval, verification, prompt repair."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from argen.asi.facs import load_facs
from argen.asi.kb import activation_rates, build_knowledge_base, check_against_data, describe, frequent_combinations, \
    modifier
from argen.asi.prompts import FIXED_PROMPT, PromptRequest, TemplateComposer, build_requests, fixed_prompts, \
    generate_prompts, hallucination_metrics
from argen.asi.retrieval import retrieve
from argen.asi.template import identity_cues
from argen.asi.verify import cited_aus, drop_aus, strip_au_tags, verify
from argen.aus import INTENSITY_COLUMNS
from tests.conftest import demo_landmarks

FACS = load_facs()


def test_facs_table() -> None:
    assert FACS.aus[1].name == "Inner brow raiser" and FACS.aus[26].code == "AU26" and 98 not in FACS.aus
    surprise = FACS.prototypes_of("surprise")[0]
    assert surprise.kind == "prototype" and surprise.intensities == {1: 0.6, 2: 0.6, 5: 0.4, 26: 0.6}
    assert set(FACS.associated_aus("fear")) >= {1, 2, 5, 20}


def test_modifier_and_description() -> None:
    assert [modifier(r) for r in (0.1, 0.3, 0.6, 0.9, 1.0)] == ["slightly", "moderately", "clearly", "strongly",
                                                                 "strongly"]
    assert describe({26: 0.2, 1: 0.8}, FACS) == "inner brows raised strongly (AU01), jaw dropped slightly (AU26)"


def test_frequent_combinations_known_answer() -> None:
    active = [frozenset(s) for s in ({1, 2, 5}, {1, 2, 5}, {1, 2}, {4, 7}, {1, 2, 26})]
    kept = frequent_combinations(active, min_support=0.4, max_entries=10)
    assert kept[0] == (frozenset({1, 2}), 4)
    assert (frozenset({1, 2, 5}), 2) in kept
    assert all(support >= 2 for _, support in kept)
    assert (frozenset({1, 5}), 2) not in kept, "a subset with the same support as a kept superset adds nothing"


def apex_table(rows: list[tuple[str, dict[int, float]]]) -> pd.DataFrame:
    records = []
    for clip, aus in rows:
        record = {c: 0.0 for c in INTENSITY_COLUMNS}
        record.update({f"AU{au:02d}_r": v for au, v in aus.items()})
        records.append({"clip_id": clip, **record})
    return pd.DataFrame(records)


def test_knowledge_base_merges_literature_and_data() -> None:
    apex = apex_table([("a", {1: 4.0, 2: 3.0, 5: 2.0, 26: 4.0}), ("b", {1: 3.0, 2: 3.0, 5: 3.0, 26: 2.0}),
                       ("c", {9: 4.0, 10: 3.0, 45: 5.0}), ("d", {9: 2.0, 10: 2.0})])
    labels = pd.Series({"a": "surprise", "b": "surprise", "c": "disgust", "d": "disgust"})
    kb, activation = build_knowledge_base(apex, labels, ["surprise", "disgust"], FACS, active_threshold=1.5,
                                          min_support=0.5, max_data_entries=5)
    proto = kb[(kb.emotion == "surprise") & (kb.kind == "prototype")].iloc[0]
    assert proto.source == "literature+data" and proto.support == 2
    assert proto.intensities == pytest.approx([0.7, 0.6, 0.5, 0.6]), "r = mean apex intensity / 5"
    observed = kb[(kb.emotion == "disgust") & (kb.source == "data")]
    assert observed.aus.map(list).tolist() == [[9, 10]], "AU45 (blink) never enters a combination"
    assert kb.entry_id.is_unique and kb.description.str.contains(r"\(AU\d\d\)").all()
    assert activation.set_index(["emotion", "au"]).loc[("disgust", 9), "rate"] == 1.0


def test_activation_rates_are_per_emotion_shares_of_active_apexes() -> None:
    apex = apex_table([("a", {1: 4.0}), ("b", {1: 1.0}), ("c", {1: 2.0, 12: 3.0}), ("d", {})])
    labels = pd.Series({"a": "surprise", "b": "surprise", "c": "happy", "d": "happy", "e": "neutral"})
    rates = activation_rates(apex, labels, active_threshold=1.5)
    assert rates.loc["surprise", 1] == 0.5 and rates.loc["happy", 1] == 0.5 and rates.loc["happy", 12] == 0.5
    assert 45 not in rates.columns and "neutral" not in rates.index, "only emotions with an apex frame"


def kb_entries(entries: list[tuple[str, list[int]]]) -> pd.DataFrame:
    return pd.DataFrame([{"entry_id": f"{e}-{k:02d}", "emotion": e, "aus": aus, "intensities": [0.6] * len(aus)}
                         for k, (e, aus) in enumerate(entries)])


RATES = pd.DataFrame({1: [0.1, 0.6, 0.0], 2: [0.1, 0.5, 0.0], 4: [0.3, 0.0, 0.1], 20: [0.3, 0.1, 0.1],
                      6: [0.3, 0.0, 0.6], 14: [0.4, 0.1, 0.5]}, index=["fear", "surprise", "happy"])


def test_the_data_check_leaves_out_entries_another_emotion_shows_more() -> None:
    kb = kb_entries([("fear", [1, 2, 4]), ("fear", [4, 20]), ("fear", [6, 14]), ("fear", [16]),
                     ("surprise", [1, 2])])
    kept, check = check_against_data(kb, RATES)
    assert kept.entry_id.tolist() == ["fear-01", "fear-03", "surprise-04"]
    rows = check.set_index("entry_id")
    assert rows.closest_emotion.to_dict() == {"fear-00": "surprise", "fear-01": "fear", "fear-02": "happy",
                                              "fear-03": "fear", "surprise-04": "surprise"}
    assert rows.score_surprise["fear-00"] == pytest.approx((0.6 + 0.5 + 0.0) / 3, abs=1e-4), "mean over the entry's AUs"
    assert rows.reason["fear-03"].startswith("cites no AU the extraction measures")
    all_kept, same = check_against_data(kb, RATES, drop=False)
    assert len(all_kept) == len(kb) and same.passes.tolist() == check.passes.tolist() and same.kept.all()


def test_the_data_check_leaves_an_emotion_without_entries_when_none_passes() -> None:
    kb = kb_entries([("fear", [1, 2]), ("fear", [6, 14]), ("surprise", [1])])
    kept, check = check_against_data(kb, RATES)
    assert kept.entry_id.tolist() == ["surprise-02"], "no fear entry is kept: its prompts will cite no AU"
    assert not check.set_index("entry_id").kept[["fear-00", "fear-01"]].any()


def test_uniform_retrieval_is_seeded_and_semantic_prefers_the_prototype() -> None:
    apex = apex_table([("a", {1: 4.0, 2: 3.0, 5: 2.0, 26: 4.0}), ("b", {1: 3.0, 2: 3.0, 5: 3.0, 26: 2.0})])
    kb, _ = build_knowledge_base(apex, pd.Series({"a": "surprise", "b": "surprise"}), ["surprise"], FACS, 1.5,
                                 0.5, 5)
    first = retrieve(kb, "surprise", 2, np.random.default_rng(3))
    again = retrieve(kb, "surprise", 2, np.random.default_rng(3))
    assert first.entry_id.tolist() == again.entry_id.tolist() and (first.emotion == "surprise").all()
    ranked = retrieve(kb, "surprise", 2, np.random.default_rng(0), strategy="semantic")
    assert ranked.kind.iloc[0] == "prototype"
    with pytest.raises(KeyError, match="no entry for 'fear'"):
        retrieve(kb, "fear", 2, np.random.default_rng(0))


FEAR_KB = {1, 2, 4, 5, 20, 25, 26}


@pytest.mark.parametrize(("text", "usable", "invalid", "contradictory"), [
    ("Identity: male-presenting, short dark hair; Expression: fear; inner brows raised (AU01), eyes widened "
     "(AU05), lips stretched (AU20).", True, [], []),
    ("Identity: male-presenting, short dark hair, wearing glasses; Expression: fear; inner brows raised (AU01), "
     "eyes widened (AU06), mouth open (AU10), jaw drop (AU98).", False, [98], [6, 10]),
    ("Identity: woman; Expression: fear; inner brows raised (AU1), smiling (AU12).", False, [], [12]),
    ("The person looks scared with raised brows (AU01) and open mouth (AU26).", False, [], []),
    ("Identity: woman; Expression: surprise; inner brows raised (AU01), jaw dropped (AU26).", False, [], []),
])
def test_verification_of_hand_written_outputs(text: str, usable: bool, invalid: list, contradictory: list) -> None:
    result = verify(text, "fear", FEAR_KB, {1, 5, 20}, FACS)
    assert result.usable is usable
    assert result.invalid == invalid and result.contradictory == contradictory
    assert result.hallucinated is bool(invalid or contradictory)


#: Lines shaped like what real instruction-tuned VLMs write (module docstring of argen.asi.verify says what is
#: accepted): (text, format_ok, emotion_ok, cited AUs, usable).
REAL_MODEL_LINES = [
    ("Identity: woman, long dark hair; Expression: slight fear; inner brows raised (AU1), eyes widened (AU5).",
     True, True, [1, 5], True),
    ("**Identity:** woman, long dark hair; **Expression:** fear; brows raised and drawn together (AU1+2+4), "
     "eyes wide (AU5)", True, True, [1, 2, 4, 5], True),
    ("Identity: man; Expression: *fear*; brows raised (AU01/AU02), lips stretched (AU 20)   ", True, True,
     [1, 2, 20], True),
    ("Sure! Here is the sentence:\nidentity: young man with glasses; expression: Fear; inner brows up (AU 1), "
     "jaw dropped (AU26).", True, True, [1, 26], True),
    ("Identity: man\nExpression: fearful\nChanges: brows raised (AU1+2), mouth stretched (AU20)\n\n"
     "Note: I avoided AU12 since it signals happiness.", True, True, [1, 2, 20], True),
    ("_Identity_: woman; _Expression_: a scared look; brows raised (`AU1 + AU2`), upper lids up (AU5C).",
     True, True, [1, 2, 5], True),
    ("\"Identity: woman; Expression: moderate fear; brows up (AU-1), lips parted (au25).\"  ", True, True,
     [1, 25], True),
    ("Identity: man; Expression: fear mixed with surprise; brows (AU1+2), eyes (AU5).", True, False, [1, 2, 5],
     False),
    ("Identity: man; Expression: fear; brows raised (AU1+2), smiling (AU6+12).", True, True, [1, 2, 6, 12], False),
    ("Identity: man; Expression: fear; brows raised (AU1, 2).", True, True, [1], False),
    ("The person looks scared: AU1+2 and AU5.", False, False, [1, 2, 5], False),
]


@pytest.mark.parametrize(("text", "format_ok", "emotion_ok", "cited", "usable"), REAL_MODEL_LINES)
def test_verification_of_real_model_shaped_lines(text: str, format_ok: bool, emotion_ok: bool, cited: list,
                                                 usable: bool) -> None:
    result = verify(text, "fear", FEAR_KB, {1, 5, 20}, FACS)
    assert (result.format_ok, result.emotion_ok, result.cited, result.usable) == (format_ok, emotion_ok, cited,
                                                                                   usable)


def test_chained_and_spaced_au_codes() -> None:
    assert cited_aus("AU1+2") == [1, 2] and cited_aus("AU01/AU02") == [1, 2] and cited_aus("AU 12") == [12]
    assert cited_aus("AU6 & 12, AU012, au25") == [6, 12, 25]
    assert cited_aus("AUs and AUDIO 12, AU1234") == []


def test_x_t_of_a_real_model_line_is_the_canonical_sentence() -> None:
    raw = ("Sure! Here is the sentence:\n**Identity:** woman, short hair; **Expression:** slight fear; brows raised "
           "(AU1+2), eyes widened (AU 5).  \nHope this helps!")
    assert strip_au_tags(raw) == "Identity: woman, short hair; Expression: slight fear; brows raised, eyes widened."
    assert drop_aus("Identity: man; Expression: fear; brows raised (AU1+2), smiling (AU6+12).", {6, 12}) == \
        "Identity: man; Expression: fear; brows raised (AU1+2)."


def test_precision_recall_against_retrieved() -> None:
    result = verify("Identity: x; Expression: fear; brows (AU01), lids (AU05), jaw (AU26).", "fear", FEAR_KB,
                    {1, 5, 20, 25}, FACS)
    assert result.precision == pytest.approx(2 / 3) and result.recall == pytest.approx(2 / 4)
    assert result.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_drop_and_strip() -> None:
    text = "Identity: man; Expression: fear; inner brows raised (AU01), smiling (AU12), lips parted (AU25)."
    assert drop_aus(text, {12}) == "Identity: man; Expression: fear; inner brows raised (AU01), lips parted (AU25)."
    assert strip_au_tags(drop_aus(text, {12})) == "Identity: man; Expression: fear; inner brows raised, lips parted."


class ScriptedComposer:
    """Returns prepared lines per attempt, as a VLM might."""

    name = "scripted"

    def __init__(self, script: dict[int, list[str]]) -> None:
        self.script = script
        self.calls: list[int] = []

    def compose(self, requests: list[PromptRequest], attempt: int) -> list[str]:
        self.calls.append(len(requests))
        return self.script[attempt][: len(requests)]


@pytest.fixture()
def fear_kb() -> pd.DataFrame:
    return pd.DataFrame({"entry_id": ["fear-00"], "emotion": ["fear"], "aus": [[1, 2, 4, 5, 20, 25, 26]],
                         "intensities": [[0.6] * 7], "description": ["..."], "source": ["literature"],
                         "kind": ["prototype"], "support": [0], "support_fraction": [0.0]})


def request(i: int) -> PromptRequest:
    image = np.full((96, 96, 3), 120, np.uint8)
    return PromptRequest(f"id{i}", "fear", image, demo_landmarks(96), seed=i, retrieved=[{1: 0.6, 5: 0.6}])


GOOD = "Identity: man; Expression: fear; inner brows raised (AU01), upper lids raised (AU05)."
HALLUCINATED = "Identity: man; Expression: fear; inner brows raised (AU01), lids up (AU05), smile (AU12)."
GIBBERISH = "qz vv 0x1f lorem"


def test_regenerate_then_drop_then_fallback(fear_kb: pd.DataFrame) -> None:
    composer = ScriptedComposer({0: [GOOD, GIBBERISH, HALLUCINATED], 1: [GOOD, HALLUCINATED], 2: [HALLUCINATED]})
    out = generate_prompts([request(0), request(1), request(2)], composer, fear_kb, FACS, "regenerate", 3)
    assert composer.calls == [3, 2, 1], "only unusable lines are composed again"
    assert out.action.tolist() == ["accepted", "regenerated", "dropped_aus"]
    assert out.tries.tolist() == [1, 2, 3]
    assert out.first_hallucinated.tolist() == [False, False, True]
    assert out.first_format_ok.tolist() == [True, False, True]
    assert out.prompt.iloc[2] == "Identity: man; Expression: fear; inner brows raised, lids up."
    metrics = hallucination_metrics(out)
    assert metrics["hallucination_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert metrics["format_failure_rate"] == pytest.approx(1 / 3, abs=1e-4)

    never = ScriptedComposer({0: [GIBBERISH]})
    fallback = generate_prompts([request(0)], never, fear_kb, FACS, "drop", 3)
    assert fallback.action.tolist() == ["fallback_prototype"] and never.calls == [1]
    assert "(AU" not in fallback.prompt.iloc[0] and "Expression: fear" in fallback.prompt.iloc[0]


def test_an_emotion_without_entries_gets_emotion_only_prompts(fear_kb: pd.DataFrame) -> None:
    """disgust has no entry (the data check left every one out): its line names the emotion and no AU, the
    composer is never asked for it, and it does not count in the hallucination figures."""
    points = demo_landmarks(96)
    identities = pd.DataFrame({"clip_id": ["a"]} | {f"x_{k}": [points[k, 0]] for k in range(68)}
                              | {f"y_{k}": [points[k, 1]] for k in range(68)})
    images = {"a": np.full((96, 96, 3), 120, np.uint8)}
    requests = build_requests(identities, images, fear_kb, ["fear", "disgust"], "vlm_rag", 1, "uniform", 0)
    assert requests[1].retrieved == []
    composer = ScriptedComposer({0: [GOOD, GOOD]})
    out = generate_prompts(requests, composer, fear_kb, FACS, "regenerate", 3).set_index("emotion")
    assert composer.calls == [1], "only fear is composed"
    assert out.action.to_dict() == {"fear": "accepted", "disgust": "emotion_only"}
    assert out.raw_final["disgust"].endswith("; Expression: disgust.") and out.cited_aus["disgust"] == []
    assert out.prompt["disgust"] == out.raw_final["disgust"] and out.tries["disgust"] == 0
    metrics = hallucination_metrics(out.reset_index())
    assert metrics["prompts"] == 2 and metrics["composed"] == 1 and metrics["format_failure_rate"] == 0.0


def test_template_backend_is_deterministic_and_grounded(fear_kb: pd.DataFrame) -> None:
    points = demo_landmarks(96)
    identities = pd.DataFrame({"clip_id": ["a", "b"]}
                              | {f"x_{k}": [points[k, 0]] * 2 for k in range(68)}
                              | {f"y_{k}": [points[k, 1]] * 2 for k in range(68)})
    images = {c: np.full((96, 96, 3), 120, np.uint8) for c in identities.clip_id}
    composer = TemplateComposer(FACS, max_aus=5)
    runs = [generate_prompts(build_requests(identities, images, fear_kb, ["fear"], "vlm_rag", 1, "uniform", 0),
                             composer, fear_kb, FACS, "regenerate", 3) for _ in range(2)]
    pd.testing.assert_frame_equal(runs[0], runs[1])
    assert not runs[0].first_hallucinated.any() and (runs[0].action == "accepted").all()
    rag = build_requests(identities, images, fear_kb, ["fear"], "vlm_rag", 1, "uniform", 0)
    plain = build_requests(identities, images, fear_kb, ["fear"], "vlm_only", 1, "uniform", 0)
    assert [(r.seed, r.cues, r.retrieved, r.instruction) for r in plain] == \
        [(r.seed, r.cues, r.retrieved, r.instruction) for r in (q.without_retrieval() for q in rag)]
    assert rag[0].retrieved and rag[0].cues == identity_cues(images["a"], points)
    fixed = fixed_prompts(identities, ["fear", "disgust"])
    assert fixed.prompt.tolist()[:2] == [FIXED_PROMPT.format(emotion="fear"), FIXED_PROMPT.format(emotion="disgust")]


def test_real_model_lines_are_accepted_without_fallback(fear_kb: pd.DataFrame) -> None:
    lines = [text for text, *_, usable in REAL_MODEL_LINES if usable]
    composer = ScriptedComposer({0: lines})
    out = generate_prompts([request(i) for i in range(len(lines))], composer, fear_kb, FACS, "regenerate", 3)
    assert (out.action == "accepted").all() and composer.calls == [len(lines)]
    assert hallucination_metrics(out)["format_failure_rate"] == 0.0
    assert not out.prompt.str.contains(r"\*|Sure|AU|Note", regex=True).any()
