"""Dataset decomposition (paper sec. 3.2): D1 into non-scarce D_ns, scarce D_s and neutral D*_ns.

The clip table written here is the index every later stage reads. Its columns (``CLIPS_SCHEMA``):

========================  =====================================================================
clip_id                   dataset's clip identifier (DFEW: 5-digit name; CK+: ``S005/001``)
frames_dir                folder holding the frames
frames                    usable frame file names, naturally sorted (unreadable ones removed)
n_frames                  ``len(frames)``
label, label_id           canonical emotion name and index (happy 0 ... fear 6)
source_label              the label as the dataset wrote it
split                     ``train`` or ``test`` under the configured fold/setup
fold                      DFEW/demo fold the split refers to (null for other datasets)
subject                   subject id where the dataset has one (demo, CK+, folder), else null
scarce                    label is one of ``decompose.scarce_classes`` (clip is in D_s)
identity_source           neutral clip of D*_ns in ``decompose.identity_splits``: may give an identity
facs                      CK+ FACS codes as (au, intensity) structs, null elsewhere
========================  =====================================================================
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pyarrow as pa

from argen.datasets import DatasetIndex
from argen.emotions import EMOTION_INDEX, EMOTIONS
from argen.params import DataParams, DecomposeParams

log = logging.getLogger(__name__)

CLIPS_SCHEMA = pa.schema([
    ("clip_id", pa.string()), ("frames_dir", pa.string()), ("frames", pa.list_(pa.string())),
    ("n_frames", pa.int32()), ("label", pa.string()), ("label_id", pa.int8()), ("source_label", pa.string()),
    ("split", pa.string()), ("fold", pa.int8()), ("subject", pa.string()), ("scarce", pa.bool_()),
    ("identity_source", pa.bool_()),
    ("facs", pa.list_(pa.struct([("au", pa.int16()), ("intensity", pa.float32())]))),
])

SKIPS_SCHEMA = pa.schema([("item", pa.string()), ("reason", pa.string())])


def clip_table(index: DatasetIndex, data: DataParams, params: DecomposeParams) -> pd.DataFrame:
    """Turn an indexed dataset into the decomposed clip table (see the module docstring for columns)."""
    scarce = set(params.scarce_classes)
    with_fold = data.source in ("demo", "dfew")
    rows = [{
        "clip_id": c.clip_id, "frames_dir": str(c.frames_dir), "frames": list(c.frames),
        "n_frames": len(c.frames), "label": c.label, "label_id": EMOTION_INDEX[c.label],
        "source_label": c.source_label, "split": c.split, "fold": data.fold if with_fold else None,
        "subject": c.subject, "scarce": c.label in scarce,
        "identity_source": c.label == "neutral" and c.split in params.identity_splits,
        "facs": None if c.facs is None else [{"au": au, "intensity": v} for au, v in c.facs],
    } for c in index.clips]
    table = pd.DataFrame(rows, columns=CLIPS_SCHEMA.names)
    duplicated = table.clip_id[table.clip_id.duplicated()]
    if not duplicated.empty:
        raise ValueError(f"clip ids are not unique: {', '.join(duplicated.head(5))}")
    return table


def skip_table(index: DatasetIndex) -> pd.DataFrame:
    """Every frame and clip left out while indexing, with its reason."""
    return pd.DataFrame([{"item": s.item, "reason": s.reason} for s in index.skips], columns=SKIPS_SCHEMA.names)


def identity_source_warning(table: pd.DataFrame, params: DecomposeParams) -> str | None:
    """Why the table has no identity source (nothing can then be generated), or None when it has some."""
    if table.identity_source.any():
        return None
    neutral_splits = sorted(set(table.split[table.label == "neutral"]))
    if not neutral_splits:
        return "no identity source: the dataset has no neutral clip to take identity frames from"
    return (f"no identity source: every neutral clip is in {', '.join(neutral_splits)}, outside "
            f"decompose.identity_splits {params.identity_splits} (CK+ clips are all test); the identities "
            f"stage will have nothing to select from")


def class_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Clip counts per emotion (rows, canonical order) and split (columns), with an ``all`` column."""
    counts = pd.crosstab(table.label, table.split).reindex(index=list(EMOTIONS), fill_value=0)
    counts = counts.reindex(columns=[s for s in ("train", "test") if s in counts.columns], fill_value=0)
    counts["all"] = counts.sum(axis=1)
    counts.index.name = "emotion"
    return counts


def summary_metrics(table: pd.DataFrame, n_skipped: int, scarce: list[str]) -> dict:
    """DVC metrics: class counts per split, subset sizes (D_ns, D_s, D*_ns) and the skip count."""
    counts = class_counts(table)
    metrics: dict = {split: {e: int(counts.loc[e, split]) for e in EMOTIONS} for split in counts.columns}
    metrics["subsets"] = {
        "D_s": int(table.scarce.sum()), "D_ns": int((~table.scarce).sum()),
        "D_ns_neutral": int((table.label == "neutral").sum()), "identity_sources": int(table.identity_source.sum()),
        "scarce_fraction": round(float(table.scarce.mean()) if len(table) else 0.0, 4),
    }
    metrics["n_clips"] = len(table)
    metrics["n_subjects"] = int(table.subject.nunique())
    metrics["n_skipped"] = n_skipped
    metrics["scarce_classes"] = " ".join(scarce)
    return metrics


def plot_class_distribution(table: pd.DataFrame, scarce: list[str], path: Path, title: str) -> None:
    """Bar chart of clips per emotion and split with scarce classes highlighted (like the paper's fig. 1a)."""
    counts = class_counts(table)
    splits = [s for s in counts.columns if s != "all"]
    fig, ax = plt.subplots(figsize=(7.5, 4.0), dpi=120)
    width = 0.8 / max(1, len(splits))
    total = max(1, int(counts["all"].sum()))
    for k, split in enumerate(splits):
        xs = [i + (k - (len(splits) - 1) / 2) * width for i in range(len(EMOTIONS))]
        colours = ["#c0392b" if e in scarce else ("#2c3e50" if split == "train" else "#7f8c8d") for e in EMOTIONS]
        ax.bar(xs, counts[split].values, width=width * 0.95, color=colours, label=split,
               alpha=1.0 if split == "train" else 0.6)
    for i, e in enumerate(EMOTIONS):
        ax.text(i, counts.loc[e, splits].max() if splits else 0, f"{100 * counts.loc[e, 'all'] / total:.1f}%",
                ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(EMOTIONS)), [e + ("*" if e in scarce else "") for e in EMOTIONS])
    ax.set_ylabel("clips")
    ax.set_title(title + "   (* scarce, red; % of all clips)", fontsize=10)
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
