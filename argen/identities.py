"""Identity frame selection (paper eq. 6 and supp. C, eq. 22-26): one neutral frame per D*_ns clip.

For each identity-source clip, frames are dropped when no face was found, when their sharpness
(Laplacian variance, eq. 22) is below ``min_sharpness``, their brightness (mean grey, eq. 25) is outside
[``min_brightness``, ``max_brightness``], their contrast (grey std, eq. 26) is below ``min_contrast``, the
image's shorter side is below ``min_image_size`` or the face box's shorter side below ``min_face_size``.
With ``neutral_check`` (default) a frame must also look neutral by an absolute test on its landmarks that
needs no reference frame (:func:`neutrality_failures`): lips closed (inner-lip gap at most
``max_lip_gap`` inter-ocular distances), lip corners not raised above the lip line (``max_corner_lift``),
no smirk (the two corners' heights within ``max_corner_asymmetry``) and eyes open (aperture at least
``min_eye_aperture``); then, on the image of each candidate in turn, no teeth between the lips
(:func:`mouth_measures`, ``max_teeth_share``). The thresholds were measured on real faces (about 90
photographs and 220 video frames, docs/real_faces.md): closed lips read a gap of at most 0.025 IOD and
slightly parted ones 0.04-0.06; neutral corners at most 0.04 IOD above the lip line and closed-mouth
smiles 0.07-0.11; a visible smirk 0.075 or more of corner asymmetry; closed lips at most 0.03 teeth
share and the astronaut's smile 0.16-0.23 under +-1 stop and a warm white balance. The AU minimum alone is not enough on real data:
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
from argen.extract.landmarks import MEASURES, face_frame, geometric_measures
from argen.face import crop_box, mouth_measures
from argen.io import decode_frame
from argen.params import IdentitiesParams

#: Frame checks in the order their failures are reported.
CHECKS: tuple[str, ...] = ("no face", "image too small", "face too small", "blurred", "too dark", "too bright",
                           "low contrast", "mouth open", "smiling", "smirk", "eyes closed", "teeth showing")


def corner_lifts(landmarks: np.ndarray) -> np.ndarray:
    """Each lip corner's height above the lip line (n, 2: image-left 48, image-right 54), in IOD.

    The lip line and face frame are those of ``corner_height`` in
    :func:`argen.extract.landmarks.geometric_measures` (eyes level, canthi anchored), whose mean these are.
    """
    p = face_frame(landmarks, anchor="canthi")
    line = 0.73 * p[:, 62, 1] + 0.27 * p[:, 66, 1]
    return np.stack([line - p[:, 48, 1], line - p[:, 54, 1]], axis=1)


def neutrality_failures(landmarks: np.ndarray, params: IdentitiesParams) -> pd.DataFrame:
    """The absolute neutrality test (module docstring) for landmarks (n, 68, 2): True where a frame fails.

    Measures are in the eyes-level face frame of :func:`argen.extract.landmarks.geometric_measures`: the
    inner-lip gap and the lip corners' height above the lip line in inter-ocular distances, the eye
    aperture as lid distance over eye width. Frames without landmarks fail none of these (the "no face"
    check covers them).
    """
    with np.errstate(invalid="ignore"):
        measures = geometric_measures(landmarks)
        lifts = corner_lifts(landmarks)
    column = {name: measures[:, i] for i, name in enumerate(MEASURES)}
    return pd.DataFrame({
        "mouth open": column["lip_gap"] > params.max_lip_gap,
        "smiling": column["corner_height"] > params.max_corner_lift,
        "smirk": np.abs(lifts[:, 0] - lifts[:, 1]) > params.max_corner_asymmetry,
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
    failures["teeth showing"] = False  # an image check, run on the candidates only (select_identities)
    return failures


def _rejection_reason(failures: pd.DataFrame, params: IdentitiesParams) -> str:
    counts = failures.sum()
    thresholds = {"blurred": f"sharpness < {params.min_sharpness:g}", "too dark": f"brightness < {params.min_brightness:g}",
                  "too bright": f"brightness > {params.max_brightness:g}", "low contrast": f"contrast < {params.min_contrast:g}",
                  "face too small": f"face < {params.min_face_size} px", "image too small": f"image < {params.min_image_size} px",
                  "mouth open": f"lip gap > {params.max_lip_gap:g} IOD",
                  "smiling": f"lip corners > {params.max_corner_lift:g} IOD above the lip line",
                  "smirk": f"one lip corner > {params.max_corner_asymmetry:g} IOD higher than the other",
                  "eyes closed": f"eye aperture < {params.min_eye_aperture:g}",
                  "teeth showing": f"teeth-like share of the mouth > {params.max_teeth_share:g}"}
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
        mean_au = admissible[list(INTENSITY_COLUMNS)].mean(axis=1).sort_values(kind="stable")
        best, teeth = None, float("nan")
        for index in mean_au.index:  # least expressive first; the image is read only for these candidates
            teeth = _teeth_share(Path(source.frames_dir), rows.loc[index], params)
            if not teeth > params.max_teeth_share:  # NaN (mouth too small to tell) passes
                best = rows.loc[index]
                break
            failures.loc[index, "teeth showing"] = True
        if best is None:
            rejected.append({"clip_id": source.clip_id, "reason": _rejection_reason(failures, params)})
            continue
        record = best.to_dict()
        record.update({"subject": source.subject, "label": source.label, "frames_dir": source.frames_dir,
                       "mean_au": float(mean_au[best.name]), "teeth_share": teeth, "n_frames": len(rows),
                       # frames passing every check (the teeth check stops at the first candidate that passes)
                       "n_admissible": int(len(mean_au) - failures["teeth showing"].sum())})
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


def _teeth_share(frames_dir: Path, row: pd.Series, params: IdentitiesParams) -> float:
    """The teeth-like share of a frame's mouth (:func:`mouth_measures`); NaN when the check is off."""
    if not params.neutral_check:
        return float("nan")
    path = frames_dir / row.frame_file
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"identity candidate frame vanished or is unreadable: {path}")
    return mouth_measures(image, landmarks_of(row.to_frame().T)[0])["teeth_share"]


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
