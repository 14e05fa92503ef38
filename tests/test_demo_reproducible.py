"""The demo renderer gives the same bytes on any x86-64 CPU: a run with the CPU's SIMD features switched off
(numpy's dispatched kernels, OpenBLAS's kernel, OpenCV's dispatch and IPP, libjpeg-turbo's SIMD) writes the
same files, and the same float images and landmarks, as a run with all of them on."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT

#: Renders the first clips of a small demo plan with the dataset writer (JPEG frames, ground-truth CSVs),
#: plus float images and landmarks of a few posed faces, and prints the hash of each, with what ran.
RENDER = r"""
import hashlib, json, sys, tempfile
from pathlib import Path
import cv2, numpy as np
from argen.demo.dataset import _render_and_write, plan_clips, render_face
from argen.params import DemoParams

params = DemoParams(n_clips=40, image_size=96, n_frames=8, clips_per_subject=4.0)
specs, identities = plan_clips(params, seed=3)
digests = {}
with tempfile.TemporaryDirectory() as tmp:
    root = Path(tmp)
    (root / "demo_meta" / "aus").mkdir(parents=True)
    for spec in specs[:3]:
        _render_and_write((spec, *identities[spec.subject], params, root))
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digests[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
for k, spec in enumerate(specs[:4]):
    pose = (0.21 * (k - 1.5), -0.13 * k, 0.07 * k + 0.01)
    image, landmarks = render_face(*identities[spec.subject], {4: 1.3 * k, 12: 2.1, 26: 0.7 * k}, 96, pose,
                                   background_phase=0.37 * k)
    digests[f"float image {k}"] = hashlib.sha256(image.tobytes()).hexdigest()
    digests[f"landmarks {k}"] = hashlib.sha256(landmarks.tobytes()).hexdigest()
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__  # 11: OpenCV's CPU_AVX2
try:
    import threadpoolctl
    blas = sorted({str(i.get("architecture")) for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"})
except ImportError:
    blas = []
ran = {"numpy": sorted(f for f in __cpu_dispatch__ if __cpu_features__.get(f)), "blas": blas,
       "opencv_avx2": cv2.checkHardwareSupport(11), "opencv_ipp": cv2.ipp.useIPP()}
print(json.dumps({"digests": digests, "ran": ran}))
"""

#: OpenCV's names of the features it dispatches to above its SSE3 baseline.
OPENCV_DISPATCH = "AVX512-SKX,AVX512F,AVX2,FMA3,FP16,AVX,POPCNT,SSE4.2,SSE4.1,SSSE3"


def reduced_cpu_env() -> dict[str, str]:
    """The environment of a CPU without any SIMD feature above the libraries' baselines."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return {"NPY_DISABLE_CPU_FEATURES": " ".join(f for f in __cpu_dispatch__ if __cpu_features__.get(f)),
            "OPENBLAS_CORETYPE": "Prescott", "OPENCV_CPU_DISABLE": OPENCV_DISPATCH, "OPENCV_IPP": "disabled",
            "JSIMD_FORCENONE": "1"}


def render(extra_env: dict[str, str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra_env}
    result = subprocess.run([sys.executable, "-c", RENDER], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.uname().machine != "x86_64",
                    reason="the features switched off are x86-64's")
def test_demo_bytes_do_not_depend_on_cpu_features() -> None:
    default, reduced = render({}), render(reduced_cpu_env())
    assert default["ran"] != reduced["ran"] or not any(default["ran"].values()), "nothing was switched off"
    assert not reduced["ran"]["numpy"] and not reduced["ran"]["opencv_avx2"] and not reduced["ran"]["opencv_ipp"]
    assert len(default["digests"]) == 3 * 8 + 3 + 8
    differ = sorted(k for k, v in default["digests"].items() if reduced["digests"].get(k) != v)
    assert not differ, f"these outputs depend on the CPU's SIMD features: {differ}"


def test_exact_maths_matches_numpy() -> None:
    """The CPU-independent maths of the renderer computes what numpy's does, to float64 rounding."""
    from argen.demo import exact

    x = np.linspace(-40.0, 40.0, 20001)
    np.testing.assert_allclose(exact.sin(x), np.sin(x), rtol=0, atol=1e-14)
    np.testing.assert_allclose(exact.cos(x), np.cos(x), rtol=0, atol=1e-14)
    y = np.linspace(-30.0, 30.0, 2001)
    np.testing.assert_allclose(exact.exp(y), np.exp(y), rtol=1e-14)
    z = np.geomspace(1e-200, 1e200, 2001)
    np.testing.assert_allclose(exact.log(z), np.log(z), rtol=1e-15, atol=1e-15)
    u = np.linspace(0.0, 1.0, 1001)
    np.testing.assert_allclose(exact.power(u, 0.6), u ** 0.6, rtol=1e-14, atol=1e-300)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(68, 3)), rng.normal(size=(3, 3))
    np.testing.assert_allclose(exact.matmul(a, b), a @ b, rtol=1e-13, atol=1e-15)
    assert exact.norm(np.array([3.0, 4.0])) == 5.0
    assert exact.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == 32.0
    walk = rng.normal(size=50)
    np.testing.assert_allclose(exact.smooth3(walk), np.convolve(walk, np.ones(3) / 3, mode="same"), atol=1e-15)
