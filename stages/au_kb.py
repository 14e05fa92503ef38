"""Stage ``au_kb`` (paper eq. 7): the AU knowledge base of the scarce emotions.

Reads ``decompose.scarce_classes``, ``au_kb``, ``data/interim/aus.parquet`` and
``data/interim/aus_clips.parquet``. Writes ``data/interim/au_kb.parquet`` (one record per entry: AU set,
emotion, description, per-AU intensity r, source literature/data, support) and ``reports/au_kb/``
(AU distribution figure, metrics).
"""

import logging
from pathlib import Path

import pandas as pd

from argen.asi.facs import load_facs
from argen.asi.kb import KB_SCHEMA, apex_frames, build_knowledge_base, plot_au_distribution
from argen.io import atomic_path, read_parquet_metadata, write_json, write_parquet
from argen.params import Params
from argen.stage import provenance, run_stage

FRAMES = Path("data/interim/aus.parquet")
PROCESSED = Path("data/interim/aus_clips.parquet")
KB = Path("data/interim/au_kb.parquet")
REPORTS = Path("reports/au_kb")

log = logging.getLogger("argen.stages.au_kb")


def main(params: Params) -> None:
    cfg, scarce = params.au_kb, params.decompose.scarce_classes
    processed = pd.read_parquet(PROCESSED)
    knowledge = processed[processed.purposes.map(lambda p: "knowledge" in p)]
    frames = pd.read_parquet(FRAMES)
    apex = apex_frames(frames[frames.clip_id.isin(knowledge.clip_id)])
    kb, activation = build_knowledge_base(apex, knowledge.set_index("clip_id").label, scarce, load_facs(),
                                          cfg.active_threshold, cfg.min_support, cfg.max_data_entries)
    meta = provenance("au_kb", params, "au_kb", scarce=" ".join(scarce),
                      au_backend=read_parquet_metadata(FRAMES).get("backend", ""))
    write_parquet(kb, KB, KB_SCHEMA, meta)
    REPORTS.mkdir(parents=True, exist_ok=True)
    with atomic_path(REPORTS / "au_distribution.png") as tmp:
        plot_au_distribution(activation, kb, tmp)
    write_json({e: {"entries": int((kb.emotion == e).sum()),
                    "from_data": int(kb[kb.emotion == e].source.str.contains("data").sum()),
                    "clips": int(activation[activation.emotion == e].clips.max() or 0)} for e in scarce},
               REPORTS / "metrics.json")
    for e in scarce:
        part = kb[kb.emotion == e]
        log.info("%s: %d entries (%d observed in %d clips)", e, len(part), part.source.str.contains("data").sum(),
                 int(activation[activation.emotion == e].clips.max() or 0))


if __name__ == "__main__":
    run_stage(main)
