"""Identity frame selection (paper eq. 6 and supp. C, eq. 22-26): one neutral frame per D*_ns clip.

For each identity-source clip, frames are dropped when no face was found, when their sharpness
(Laplacian variance, eq. 22) is below ``min_sharpness``, their brightness (mean grey, eq. 25) is outside
[``min_brightness``, ``max_brightness``], their contrast (grey std, eq. 26) is below ``min_contrast``, the
image's shorter side is below ``min_image_size`` or the face box's shorter side below ``min_face_size``.
With ``neutral_check`` (default) a frame must also look neutral by an absolute test on its landmarks that
needs no reference frame (:func:`neutrality_failures`): lips closed (inner-lip gap at most
``max_lip_gap`` inter-ocular distances), lip corners not raised above the lip line (``max_corner_lift``)
and eyes open (aperture at least ``min_eye_aperture``). The AU minimum alone is not enough on real data:
AUs are measured against the clip's own least-expressive frames, so in a clip where the person talks or
smiles throughout, every frame reads near 0 and the "least expressive" one is often mid-speech or a broad
smile. Of the frames left, the one with the lowest mean AU intensity over the 17 AUs (eq. 23-24) is the
identity.

The paper applies the sharpness filter before the AU minimum and the other checks after it; applying
them all before the minimum (as here) picks the least-expressive frame among those that pass, instead of
dropping a clip whose least-expressive frame happens to be dark.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from argen.aus import INTENSITY_COLUMNS
from argen.errors import InputError
from argen.extract import landmarks_of
from argen.extract.landmarks import MEASURES, geometric_measures
from argen.face import crop_box
from argen.io import decode_frame
from argen.params import IdentitiesParams

#: Frame checks in the order their failures are reported.
CHECKS: tuple[str, ...] = ("no face", "image too small", "face too small", "blurred", "too dark", "too bright",
                           "low contrast", "mouth open", "smiling", "eyes closed")


def neutrality_failures(landmarks: np.ndarray, params: IdentitiesParams) -> pd.DataFrame:
    """The absolute neutrality test (module docstring) for landmarks (n, 68, 2): True where a frame fails.

    Measures are in the eyes-level face frame of :func:`argen.extract.landmarks.geometric_measures`: the
    inner-lip gap and the lip corners' height above the lip line in inter-ocular distances, the eye
    aperture as lid distance over eye width. Frames without landmarks fail none of these (the "no face"
    check covers them).
    """
    with np.errstate(invalid="ignore"):
        measures = geometric_measures(landmarks)
    column = {name: measures[:, i] for i, name in enumerate(MEASURES)}
    return pd.DataFrame({
        "mouth open": column["lip_gap"] > params.max_lip_gap,
        "smiling": column["corner_height"] > params.max_corner_lift,
        "eyes closed": column["aperture"] < params.min_eye_aperture,
    })


def frame_failures(frames: pd.DataFrame, params: IdentitiesParams) -> pd.DataFrame:
    """Boolean table (one column per check in :data:`CHECKS`): True where a frame fails that check."""
    face_side = np.minimum(frames.face_w, frames.face_h)
    failures = pd.DataFrame({
        "no face": ~frames.success.astype(bool),
        "image too small": np.minimum(frames.img_w, frames.img_h) < params.min_image_size,
        "face too small": ~(face_side >= params.min_face_size),
        "blurred": frames.sharpness < params.min_sharpness,
        "too dark": frames.brightness < params.min_brightness,
        "too bright": frames.brightness > params.max_brightness,
        "low contrast": frames.contrast < params.min_contrast,
    }, index=frames.index)
    neutral = neutrality_failures(landmarks_of(frames), params).set_index(frames.index)
    for check in neutral.columns:
        failures[check] = neutral[check] & params.neutral_check
    return failures


def _rejection_reason(failures: pd.DataFrame, params: IdentitiesParams) -> str:
    counts = failures.sum()
    thresholds = {"blurred": f"sharpness < {params.min_sharpness:g}", "too dark": f"brightness < {params.min_brightness:g}",
                  "too bright": f"brightness > {params.max_brightness:g}", "low contrast": f"contrast < {params.min_contrast:g}",
                  "face too small": f"face < {params.min_face_size} px", "image too small": f"image < {params.min_image_size} px",
                  "mouth open": f"lip gap > {params.max_lip_gap:g} IOD",
                  "smiling": f"lip corners > {params.max_corner_lift:g} IOD above the lip line",
                  "eyes closed": f"eye aperture < {params.min_eye_aperture:g}"}
    parts = [f"{int(counts[c])} {c}" + (f" ({thresholds[c]})" if c in thresholds else "") for c in CHECKS if counts[c]]
    return f"no admissible frame among {len(failures)}: " + ", ".join(parts)


def select_identities(frames: pd.DataFrame, sources: pd.DataFrame,
                      params: IdentitiesParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pick one identity frame per source clip.

    Args:
        frames: extract_aus rows (AUs, landmarks, face box, quality figures) of at least the source clips.
        sources: the identity-source clips from the decompose table (clip_id, subject, frames_dir, ...).
        params: the ``identities`` section.

    Returns:
        (selected: one row per identity with the figures that admitted it and its landmarks,
        rejected: clip_id and the reason no frame was admissible).
    """
    by_clip = dict(tuple(frames.groupby("clip_id", sort=False))) if len(frames) else {}
    selected, rejected = [], []
    for source in sources.itertuples():
        rows = by_clip.get(source.clip_id)
        if rows is None:
            rejected.append({"clip_id": source.clip_id, "reason": "no extract_aus rows (skipped there)"})
            continue
        failures = frame_failures(rows, params)
        admissible = rows[~failures.any(axis=1)]
        if admissible.empty:
            rejected.append({"clip_id": source.clip_id, "reason": _rejection_reason(failures, params)})
            continue
        mean_au = admissible[list(INTENSITY_COLUMNS)].mean(axis=1)
        best = admissible.loc[mean_au.idxmin()]
        record = best.to_dict()
        record.update({"subject": source.subject, "label": source.label, "frames_dir": source.frames_dir,
                       "mean_au": float(mean_au.min()), "n_frames": len(rows), "n_admissible": len(admissible)})
        selected.append(record)
    return pd.DataFrame(selected), pd.DataFrame(rejected, columns=["clip_id", "reason"])


def read_identity_image(path: Path) -> np.ndarray:
    """One identity frame (BGR, as OpenCV reads it) written by the identities stage.

    Raises:
        InputError: the file is missing, unreadable or damaged (:func:`argen.io.decode_frame` says how).
    """
    image, problem = decode_frame(path)
    if problem:
        raise InputError(f"identity image {path}: {problem} (re-run the identities stage: dvc repro identities)")
    return image


def identity_file_name(clip_id: str) -> str:
    """File name of a clip's identity image ('/' in FERV39k and CK+ ids becomes '__')."""
    return f"{clip_id.replace('/', '__')}.png"


def write_identity_images(selected: pd.DataFrame, out_dir: Path) -> list[str]:
    """Copy each selected frame losslessly to ``out_dir`` as PNG; returns the file names in row order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for row in selected.itertuples():
        image = cv2.imread(str(Path(row.frames_dir) / row.frame_file), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"identity frame vanished or is unreadable: {Path(row.frames_dir) / row.frame_file}")
        name = identity_file_name(row.clip_id)
        if not cv2.imwrite(str(out_dir / name), image):
            raise OSError(f"cannot write {out_dir / name}")
        names.append(name)
    return names


def identity_grid(selected: pd.DataFrame, image_dir: Path, path: Path, n: int, columns: int = 6) -> None:
    """A grid of the first ``n`` identities, face crops, with their mean AU and sharpness (like fig. 6).

    Faces are cropped from the identity frame around the face box (a quarter of the box added on each
    side), so on wide real video the face fills its cell.
    """
    shown = selected.head(n)
    rows = max(1, int(np.ceil(len(shown) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.9, rows * 2.15), dpi=110, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, row in zip(axes.flat, shown.itertuples()):
        image = cv2.imread(str(image_dir / row.image_file), cv2.IMREAD_COLOR)
        face = crop_box(image, (row.face_x, row.face_y, row.face_w, row.face_h), margin=0.25)
        ax.imshow(cv2.cvtColor(face, cv2.COLOR_BGR2RGB))
        ax.set_title(f"{row.clip_id} · f{int(row.frame)}\nAU {row.mean_au:.2f} · sharp {row.sharpness:.0f}",
                     fontsize=7)
    fig.suptitle(f"Selected identity frames ({len(shown)} of {len(selected)}): lowest mean AU among admissible, "
                 f"neutral-looking frames", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, pil_kwargs={"quality": 90} if path.suffix.lower() in (".jpg", ".jpeg") else None)
    plt.close(fig)
