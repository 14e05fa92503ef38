"""AU extraction: OpenFace CSV parsing, the OpenFace subprocess backend, the landmark backend."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from argen.aus import INTENSITY_COLUMNS
from argen.demo.dataset import render_face
from argen.demo.face import FaceShape
from argen.demo.render import Appearance
from argen.extract.landmarks import LandmarkAUBackend, smooth_landmarks
from argen.face import FaceAnalyzer
from argen.extract.openface import CsvBackend, OpenFaceBackend, OpenFaceError, read_openface_csv, \
    rows_from_openface
from argen.extract.run import extract, make_backend, quality_figures, select_clips
from argen.params import ExtractAUsParams

AU_NAMES = list(INTENSITY_COLUMNS)


def openface_csv(path: Path, spaced: bool, rows: list[tuple[int, int, float, int, float]]) -> Path:
    """An OpenFace 2.x CSV: (frame, face_id, confidence, success, AU value for every AU) per row."""
    columns = ["frame", "face_id", "timestamp", "confidence", "success", "pose_Rx",
               *[f"x_{i}" for i in range(68)], *[f"y_{i}" for i in range(68)], *AU_NAMES,
               *[c.replace("_r", "_c") for c in AU_NAMES]]
    sep = ", " if spaced else ","
    lines = [sep.join(columns)]
    for frame, face_id, conf, success, au in rows:
        xs = [f"{10 + i:.1f}" for i in range(68)]
        ys = [f"{20 + i:.1f}" for i in range(68)]
        values = [str(frame), str(face_id), "0.000", f"{conf:.2f}", str(success), "0.1", *xs, *ys,
                  *[f"{au:.2f}"] * 17, *["1"] * 17]
        lines.append(sep.join(values))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("spaced", [True, False])
def test_openface_csv_both_header_styles(tmp_path: Path, spaced: bool) -> None:
    path = openface_csv(tmp_path / "clip.csv", spaced, [
        (1, 0, 0.98, 1, 1.5), (2, 0, 0.10, 0, 0.0), (3, 0, 0.95, 1, 2.5), (3, 1, 0.40, 1, 4.0)])
    table = read_openface_csv(path)
    assert "AU01_r" in table.columns and "success" in table.columns
    rows = rows_from_openface(table, "c1", ["1.jpg", "2.jpg", "10.jpg"], path)
    assert rows.success.tolist() == [True, False, True]
    assert rows.loc[0, "AU12_r"] == 1.5 and np.isnan(rows.loc[1, "AU12_r"])
    assert rows.loc[2, "AU12_r"] == 2.5, "with two faces the more confident one is kept"
    assert rows.frame_file.tolist() == ["1.jpg", "2.jpg", "10.jpg"]
    assert rows.loc[0, "x_0"] == 10.0 and rows.loc[0, "face_w"] == pytest.approx(67.0)


def test_openface_csv_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("frame,success\n1,1\n")
    with pytest.raises(OpenFaceError, match="missing confidence, AU01_r"):
        read_openface_csv(bad)
    path = openface_csv(tmp_path / "long.csv", False, [(5, 0, 0.9, 1, 1.0)])
    with pytest.raises(OpenFaceError, match="do not fit the clip's 2 frames"):
        rows_from_openface(read_openface_csv(path), "c", ["1.jpg", "2.jpg"], path)


def test_openface_backend_without_binary_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(OpenFaceError) as info:
        OpenFaceBackend(str(tmp_path / "FeatureExtraction"))
    message = str(info.value)
    assert "not found or not executable" in message and "extract_aus.openface_bin" in message
    assert "backend: landmarks" in message
    with pytest.raises(OpenFaceError, match="not found"):
        OpenFaceBackend("no-such-FeatureExtraction-binary")


def test_openface_backend_runs_the_binary_on_frames_in_natural_order(tmp_path: Path) -> None:
    """A stand-in FeatureExtraction records its arguments and the order of the files it was given."""
    fake = tmp_path / "FeatureExtraction"
    fake.write_text(f"""#!{sys.executable}
import sys, os, pathlib
args = sys.argv[1:]
frames = pathlib.Path(args[args.index("-fdir") + 1]); out = pathlib.Path(args[args.index("-out_dir") + 1])
out.mkdir(parents=True, exist_ok=True)
names = sorted(os.listdir(frames))
(pathlib.Path({str(tmp_path)!r}) / "seen.txt").write_text(" ".join(args) + "\\n" + " ".join(
    os.path.basename(os.readlink(frames / n)) for n in names))
cols = ["frame", "face_id", "timestamp", "confidence", "success"] + {AU_NAMES!r}
lines = [", ".join(cols)] + [", ".join([str(k + 1), "0", "0", "0.9", "1"] + [str(k)] * 17) for k in range(len(names))]
(out / "frames.csv").write_text("\\n".join(lines))
""")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    frames = tmp_path / "clip"
    frames.mkdir()
    names = ["1.jpg", "2.jpg", "10.jpg"]
    for name in names:
        cv2.imwrite(str(frames / name), np.zeros((8, 8, 3), np.uint8))
    rows = OpenFaceBackend(str(fake), au_static=True).process_clip("c", frames, names, [])
    args, seen = (tmp_path / "seen.txt").read_text().splitlines()
    assert seen.split() == names, "frame k of OpenFace's CSV is the clip's k-th frame in natural order"
    assert "-aus" in args and "-au_static" in args and "-2Dfp" in args
    assert rows.AU01_r.tolist() == [0.0, 1.0, 2.0] and rows.success.all()


def test_csv_backend_reads_precomputed_files(tmp_path: Path) -> None:
    openface_csv(tmp_path / "Scene__Happy__0001.csv", True, [(1, 0, 0.9, 1, 3.0), (2, 0, 0.9, 1, 2.0)])
    backend = CsvBackend(str(tmp_path))
    rows = backend.process_clip("Scene/Happy/0001", tmp_path, ["a.jpg", "b.jpg"], [])
    assert rows.AU01_r.tolist() == [3.0, 2.0]
    with pytest.raises(OpenFaceError, match="no OpenFace CSV for clip x"):
        backend.process_clip("x", tmp_path, ["a.jpg"], [])


def expression_clip(aus: dict[int, float], n: int = 6, seed: int = 11) -> list[np.ndarray]:
    """A clean demo face going from neutral (first half) to ``aus`` (second half)."""
    appearance = Appearance.sample(np.random.default_rng(seed))
    frames = []
    for k in range(n):
        image, _ = render_face(FaceShape(), appearance, aus if k >= n // 2 else {}, 128)
        frames.append(np.clip(image, 0, 255).astype(np.uint8))
    return frames


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    """One set of detectors and landmark predictor for the module (loading the predictor takes seconds)."""
    return FaceAnalyzer()


@pytest.mark.parametrize(("emotion", "aus", "rising", "steady"), [
    ("happy", {6: 4.0, 12: 4.5}, ["AU12_r"], ["AU01_r", "AU04_r", "AU26_r"]),
    ("surprise", {1: 4.5, 2: 4.5, 5: 4.0, 26: 4.5}, ["AU01_r", "AU02_r", "AU26_r"], ["AU04_r", "AU12_r"]),
    ("angry", {4: 5.0, 7: 4.0, 23: 4.0}, ["AU04_r"], ["AU01_r", "AU02_r", "AU12_r", "AU26_r"]),
])
def test_landmark_backend_moves_the_right_aus(emotion: str, aus: dict, rising: list, steady: list,
                                             analyzer: FaceAnalyzer) -> None:
    """Six demo faces, each neutral for three frames then at the apex. The reference is the clip's first frame:
    with ``reference: clip`` a clip that is half apex has no least-expressive half to take as its neutral (the
    backend then reads the apex as neutral and the neutral frames as the opposite expression on about half of
    the faces), a property of these test clips, not of real clips that start neutral."""
    for seed in range(6):
        backend = LandmarkAUBackend(smooth_frames=1, reference="first")  # a new backend per clip ...
        backend._analyzer = analyzer  # ... with the module's loaded predictor (stateless: it only reads frames)
        frames = expression_clip(aus, seed=seed)
        rows = backend.finalize(backend.process_clip(emotion, Path("."), [f"{k}.jpg" for k in range(6)], frames))
        assert rows.success.all()
        change = rows.iloc[3:][AU_NAMES].mean() - rows.iloc[:3][AU_NAMES].mean()
        for au in rising:
            assert change[au] > 1.0, f"{emotion}, face {seed}: {au} should rise (change {change[au]:.2f})"
        for au in steady:
            assert change[au] < 0.75, f"{emotion}, face {seed}: {au} should stay (change {change[au]:.2f})"


def test_smoothing_keeps_constant_tracks_and_damps_jitter() -> None:
    rng = np.random.default_rng(0)
    still = np.tile(rng.normal(size=(1, 68, 2)), (10, 1, 1))
    np.testing.assert_allclose(smooth_landmarks(still, 5), still)
    jitter = still + rng.normal(0, 1, still.shape)
    assert np.std(smooth_landmarks(jitter, 5) - still) < 0.7 * np.std(jitter - still)


def test_quality_figures_match_their_definitions() -> None:
    flat = np.full((32, 32, 3), 100, np.uint8)
    assert quality_figures(flat) == (0.0, 100.0, 0.0)
    checker = np.indices((32, 32)).sum(axis=0) % 2 * 200
    image = np.repeat(checker[..., None], 3, axis=2).astype(np.uint8)
    sharp, bright, contrast = quality_figures(image)
    assert bright == pytest.approx(100.0) and contrast == pytest.approx(100.0)
    assert sharp > quality_figures(cv2.GaussianBlur(image, (0, 0), 2))[0] * 10


def test_extract_on_the_tiny_demo(tiny_demo: Path) -> None:
    from argen.datasets import index_dataset
    from argen.decompose import clip_table
    from argen.params import DataParams, DecomposeParams
    data = DataParams(root=str(tiny_demo))
    clips = clip_table(index_dataset(data, seed=0), data, DecomposeParams())
    params = ExtractAUsParams(sample_per_class=1, workers=2)
    chosen = select_clips(clips, params, seed=0)
    assert set(chosen.clip_id[chosen.purposes.map(lambda p: "identity" in p)]) == set(
        clips.clip_id[clips.identity_source])
    assert (clips.set_index("clip_id").loc[chosen.clip_id[chosen.purposes.map(lambda p: "knowledge" in p)],
                                            "split"] == "train").all()
    frames, skips = extract(chosen, params)
    assert skips.empty and len(frames) == chosen.n_frames.sum()
    assert frames.success.mean() > 0.95
    assert {"sharpness", "brightness", "contrast", "img_w"} <= set(frames.columns)
    assert frames.loc[frames.success, AU_NAMES].notna().all().all()
    assert frames.loc[frames.success, AU_NAMES].to_numpy().min() >= 0
    again, _ = extract(chosen, ExtractAUsParams(sample_per_class=1, workers=1))
    pd.testing.assert_frame_equal(frames, again, check_dtype=False)


def fake_openface_install(root: Path) -> Path:
    """A stand-in FeatureExtraction that, like OpenFace, needs ``model/`` beside the binary it was started as
    and prints its errors on stdout; it records its arguments."""
    bin_dir = root / "OpenFace" / "bin"
    (bin_dir / "model").mkdir(parents=True)
    (bin_dir / "model" / "main_clnf_general.txt").write_text("model")
    fake = bin_dir / "FeatureExtraction"
    fake.write_text(f"""#!{sys.executable}
import sys, os, pathlib
here = pathlib.Path(sys.argv[0]).parent
args = sys.argv[1:]
(pathlib.Path({str(root)!r}) / "args.txt").write_text(" ".join(args))
mloc = args[args.index("-mloc") + 1] if "-mloc" in args else "model/main_ceclm_general.txt"
if not (here / mloc).is_file():
    print("Could not find the landmark detection model to load: " + str(here / mloc)); sys.exit(1)
frames = pathlib.Path(args[args.index("-fdir") + 1]); out = pathlib.Path(args[args.index("-out_dir") + 1])
out.mkdir(parents=True, exist_ok=True)
cols = ["frame", "face_id", "timestamp", "confidence", "success"] + {AU_NAMES!r}
rows = [", ".join([str(k + 1), "0", "0", "0.9", "1"] + ["1.5"] * 17) for k in range(len(os.listdir(frames)))]
(out / "frames.csv").write_text("\\n".join([", ".join(cols)] + rows))
""")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return fake


def test_openface_behind_a_symlink_with_its_landmark_model_and_extra_args(tmp_path: Path) -> None:
    """OpenFace finds model/ beside the real binary: a symlink on PATH must be resolved; -mloc picks the
    landmark model a build has; extra arguments are passed as given; stdout errors are reported."""
    fake = fake_openface_install(tmp_path)
    link = tmp_path / "usr-local-bin" / "FeatureExtraction"
    link.parent.mkdir()
    link.symlink_to(fake)
    frames = tmp_path / "clip"
    frames.mkdir()
    cv2.imwrite(str(frames / "1.jpg"), np.zeros((8, 8, 3), np.uint8))

    backend = OpenFaceBackend(str(link), model="model/main_clnf_general.txt", extra_args=["-wild"])
    assert backend.binary == str(fake)
    rows = backend.process_clip("c", frames, ["1.jpg"], [])
    assert rows.AU01_r.tolist() == [1.5]
    args = (tmp_path / "args.txt").read_text().split()
    assert args[args.index("-mloc") + 1] == "model/main_clnf_general.txt" and args[-1] == "-wild"

    without_model = OpenFaceBackend(str(link))
    with pytest.raises(OpenFaceError, match=r"clip c .*exit code 1: Could not find the landmark detection model"):
        without_model.process_clip("c", frames, ["1.jpg"], [])
    fake.unlink()  # the binary vanishes mid-run: a recorded failure of this clip, not a crashed worker
    with pytest.raises(OpenFaceError, match=r"could not be started on clip c"):
        backend.process_clip("c", frames, ["1.jpg"], [])


def test_openface_params_reach_the_backend(tmp_path: Path) -> None:
    fake = fake_openface_install(tmp_path)
    params = ExtractAUsParams(backend="openface", openface_bin=str(fake), openface_model="model/x.txt",
                              openface_args=["-nomask"], openface_timeout_s=5)
    backend = make_backend(params)
    assert backend.timeout_s == 5 and backend.command(Path("f"), Path("o"))[-3:] == ["-mloc", "model/x.txt",
                                                                                    "-nomask"]


def test_sample_per_class_all_takes_every_clip_of_the_splits() -> None:
    clips = pd.DataFrame({"clip_id": [f"c{k}" for k in range(7)], "label": list("aabbbcc"),
                          "split": ["train"] * 6 + ["test"], "identity_source": [False] * 7,
                          "scarce": [False] * 7})
    every = select_clips(clips, ExtractAUsParams(sample_per_class="all"), seed=0)
    assert sorted(every.clip_id) == [f"c{k}" for k in range(6)]
    two = select_clips(clips, ExtractAUsParams(sample_per_class=2), seed=0)
    assert len(two) == 5  # a: 2, b: 2 of 3, c: 1 train clip
    with pytest.raises(ValueError):
        ExtractAUsParams(sample_per_class="some")
