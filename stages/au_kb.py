"""Stage ``au_kb`` (paper eq. 7): the AU knowledge base of the scarce emotions.

Reads ``decompose.scarce_classes``, ``au_kb``, ``data/interim/aus.parquet`` and
``data/interim/aus_clips.parquet``. Writes ``data/interim/au_kb.parquet`` (one record per entry: AU set,
emotion, description, per-AU intensity r, source literature/data, support),
``data/interim/au_kb_skipped.parquet`` (knowledge clips that could not contribute, with the reason) and
``reports/au_kb/`` (AU distribution figure, metrics, ``data_check.csv``: every entry checked against the
training clips of all emotions; ``au_kb.data_check`` leaves out those that fail).
"""

import logging

from argen.asi.facs import load_facs
from argen.asi.kb import (KB_SCHEMA, activation_rates, apex_frames, build_knowledge_base, check_against_data,
                         plot_au_distribution, unusable_clips)
from argen.extract import FRAME_COLUMNS
from argen.io import read_parquet_metadata, read_table, staged_outputs
from argen.params import Params
from argen.paths import AU_CLIPS as PROCESSED, FRAMES, KB, KB_SKIPPED as SKIPPED, report_dir
from argen.stage import provenance, run_stage

REPORTS = report_dir("au_kb")

log = logging.getLogger("argen.stages.au_kb")


def main(params: Params) -> None:
    cfg, scarce = params.au_kb, params.decompose.scarce_classes
    processed = read_table(PROCESSED, ["clip_id", "label", "split", "purposes"], "extract_aus")
    knowledge = processed[processed.purposes.map(lambda p: "knowledge" in p)]
    frames = read_table(FRAMES, FRAME_COLUMNS, "extract_aus")
    training = processed[processed.split == "train"]
    training_apex = apex_frames(frames[frames.clip_id.isin(training.clip_id)])
    apex = training_apex[training_apex.clip_id.isin(knowledge.clip_id)].reset_index(drop=True)
    skipped = unusable_clips(knowledge, apex, scarce)
    full_kb, activation = build_knowledge_base(apex, knowledge.set_index("clip_id").label, scarce, load_facs(),
                                          cfg.active_threshold, cfg.min_support, cfg.max_data_entries)
    rates = activation_rates(training_apex, training.set_index("clip_id").label, cfg.active_threshold)
    kb, check = check_against_data(full_kb, rates, drop=cfg.data_check)
    meta = provenance("au_kb", params, "au_kb", scarce=" ".join(scarce),
                      au_backend=read_parquet_metadata(FRAMES).get("backend", ""))
    clips = {e: int(activation[activation.emotion == e].clips.max() or 0) for e in scarce}
    with staged_outputs() as out:
        out.parquet(kb, KB, KB_SCHEMA, meta)
        out.parquet(skipped, SKIPPED, metadata=meta)
        plot_au_distribution(activation, full_kb, out.path(REPORTS / "au_distribution.png"))
        check.to_csv(out.path(REPORTS / "data_check.csv"), index=False)
        out.json({e: {"entries": int((kb.emotion == e).sum()),
                      "from_data": int(kb[kb.emotion == e].source.str.contains("data").sum()),
                      "left_out": int(((check.emotion == e) & ~check.kept).sum()),
                      "clips": clips[e]} for e in scarce} | {"n_skipped": len(skipped)}, REPORTS / "metrics.json")
    for e in scarce:
        part = kb[kb.emotion == e]
        log.info("%s: %d entries (%d observed in %d clips)", e, len(part), part.source.str.contains("data").sum(),
                 clips[e])
    for row in check[check.reason != ""].itertuples():
        log.info("  %s %s (%s): %s%s", "kept" if row.kept else "left out", row.entry_id, row.aus, row.reason,
                 "" if row.kept else " (au_kb.data_check)")
    for item, reason in skipped.itertuples(index=False):
        log.info("  skipped %s: %s", item, reason)


if __name__ == "__main__":
    run_stage(main)
