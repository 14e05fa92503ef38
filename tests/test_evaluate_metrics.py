"""Known answers for the Fréchet distance family (eq. 29-33) and the diversity figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg

from argen.evaluate.frechet import fd_from_features, fd_with_interval, frechet_distance, gaussian_stats, grouped_fd, \
    mean_pairwise_distance


def random_spd(rng: np.random.Generator, dim: int) -> np.ndarray:
    a = rng.normal(size=(dim, dim))
    return a @ a.T + 0.1 * np.eye(dim)


def sqrtm_reference(mu1, s1, mu2, s2) -> float:
    """The textbook formula through scipy's (complex) matrix square root of S1 S2."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_a_set_against_itself_is_zero() -> None:
    features = np.random.default_rng(0).normal(size=(50, 8))
    assert fd_from_features(features, features.copy()) == pytest.approx(0.0, abs=1e-8)


def test_gaussians_with_known_moments_match_the_closed_form() -> None:
    # commuting (diagonal) covariances: FD = |dmu|^2 + sum (sqrt(s1) - sqrt(s2))^2
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = 1 + 0 + 4 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-12)
    # scalar case: (m1 - m2)^2 + (sd1 - sd2)^2
    assert frechet_distance(np.array([3.0]), np.array([[4.0]]), np.array([0.0]), np.array([[1.0]])) \
        == pytest.approx(9 + 1)


def test_non_commuting_covariances_agree_with_scipy_sqrtm() -> None:
    rng = np.random.default_rng(1)
    for dim in (2, 5, 16):
        mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim)
        s1, s2 = random_spd(rng, dim), random_spd(rng, dim)
        assert not np.allclose(s1 @ s2, s2 @ s1)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(sqrtm_reference(mu1, s1, mu2, s2), rel=1e-6)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-9)


def test_large_samples_approach_the_analytic_value() -> None:
    rng = np.random.default_rng(2)
    mu1, mu2 = np.zeros(3), np.array([1.0, 0.0, -1.0])
    s1, s2 = random_spd(rng, 3), random_spd(rng, 3)
    a = rng.multivariate_normal(mu1, s1, 200_000)
    b = rng.multivariate_normal(mu2, s2, 200_000)
    assert fd_from_features(a, b) == pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=0.02)


def test_covariance_uses_n_minus_1_and_rejects_one_row() -> None:
    mu, sigma = gaussian_stats(np.array([[0.0], [2.0]]))
    assert mu.tolist() == [1.0] and sigma.tolist() == [[2.0]]  # (1 + 1) / (2 - 1)
    with pytest.raises(ValueError, match="at least 2"):
        gaussian_stats(np.zeros((1, 3)))


def test_small_n_carries_the_rank_warning_and_large_n_does_not() -> None:
    rng = np.random.default_rng(3)
    small = fd_with_interval(rng.normal(size=(10, 16)), rng.normal(size=(10, 16)), n_boot=0)
    assert "rank-deficient" in small.warning and small.n_real == 10 and small.dim == 16 and small.interval is None
    large = fd_with_interval(rng.normal(size=(40, 16)), rng.normal(size=(40, 16)), n_boot=0)
    assert large.warning == ""


def test_paired_bootstrap_interval_is_reproducible_and_resamples_pairs() -> None:
    rng = np.random.default_rng(4)
    real = rng.normal(size=(40, 2))
    shifted = real + [1.0, 0.0]
    result = fd_with_interval(real, shifted, n_boot=200, seed=7, paired=True)
    assert result.value == pytest.approx(1.0)
    # pairs resampled together: every resample is the same set shifted by (1, 0), so the interval is a point
    assert result.interval == pytest.approx((1.0, 1.0))
    unpaired = fd_with_interval(real, shifted, n_boot=200, seed=7, paired=False)
    assert unpaired.interval[0] < 1.0 < unpaired.interval[1]
    small = fd_with_interval(real[:12], rng.normal(size=(12, 2)), n_boot=300, seed=0)
    assert small.interval[0] <= small.value <= small.interval[1]  # bias-corrected: resampling inflates FD
    assert fd_with_interval(real, shifted, n_boot=200, seed=7).interval == unpaired.interval


def test_grouped_distances_use_the_right_groups_and_n() -> None:
    rng = np.random.default_rng(5)
    real = rng.normal(size=(9, 2))
    real_groups = np.array(["S1"] * 4 + ["S2"] * 3 + ["S3"] * 2)
    generated = np.concatenate([real[:4] + [2.0, 0.0], real[4:7] + [0.0, 1.0], rng.normal(size=(1, 2))])
    generated_groups = np.array(["S1"] * 4 + ["S2"] * 3 + ["S4"])
    result = grouped_fd(real, real_groups, generated, generated_groups, min_n=2)
    assert result.table.group.tolist() == ["S1", "S2"]
    assert result.table.n_real.tolist() == [4, 3] and result.table.n_generated.tolist() == [4, 3]
    assert result.table.fd.tolist() == pytest.approx([4.0, 1.0])  # each group only shifted
    assert result.mean == pytest.approx(2.5) and result.sd == pytest.approx(np.std([4.0, 1.0], ddof=1))
    reasons = dict(zip(result.skipped.group, result.skipped.reason))
    assert reasons == {"S3": "only in the real set", "S4": "only in the generated set"}
    one = grouped_fd(real, real_groups, generated, np.array(["S1"] * 4 + ["S2"] + ["S9"] * 2 + ["S4"]), min_n=2)
    assert dict(zip(one.skipped.group, one.skipped.reason))["S2"] == "fewer than 2 clips on a side"
    booted = grouped_fd(real, real_groups, generated, generated_groups, min_n=2, n_boot=100, seed=0, paired=True)
    assert booted.interval == pytest.approx((2.5, 2.5))  # paired shifts: every resample gives the same mean


def test_mean_pairwise_distance_of_known_points() -> None:
    points = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    assert mean_pairwise_distance(points) == pytest.approx((5 + 4 + 3) / 3)
    assert np.isnan(mean_pairwise_distance(points[:1]))


# --- the FVD detector and LPIPS (random weights: the real ones are never downloaded) ----------------------

@pytest.fixture(scope="module")
def i3d_weights(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A seeded random InceptionI3d saved as a state dict, a 16-frame clip and its features."""
    import torch

    from argen.evaluate.i3d import FVDDetector, InceptionI3d

    torch.manual_seed(0)
    model = InceptionI3d().eval()
    path = tmp_path_factory.mktemp("i3d") / "i3d_pretrained_400.pt"
    torch.save(model.state_dict(), path)
    clip = np.random.default_rng(0).integers(0, 256, (1, 16, 32, 40, 3), dtype=np.uint8)
    return path, clip, FVDDetector(model, "state_dict", str(path), "cpu").features(clip)


def test_i3d_maps_a_16_frame_clip_to_400_logits_and_its_state_dict_round_trips(i3d_weights) -> None:
    from argen.evaluate.i3d import load_i3d

    path, clip, features = i3d_weights
    assert features.shape == (1, 400) and features.dtype == np.float64 and np.isfinite(features).all()
    loaded = load_i3d(path)
    assert loaded.kind == "state_dict"
    np.testing.assert_array_equal(loaded.features(clip), features)


def test_i3d_has_the_published_layout() -> None:
    from argen.evaluate.i3d import InceptionI3d

    keys = InceptionI3d().state_dict()
    for key in ("Conv3d_1a_7x7.conv3d.weight", "Conv3d_1a_7x7.bn.running_var", "Conv3d_2c_3x3.conv3d.weight",
                "Mixed_3b.b1b.conv3d.weight", "Mixed_5c.b3b.conv3d.weight", "logits.conv3d.weight", "logits.conv3d.bias"):
        assert key in keys
    assert tuple(keys["Conv3d_1a_7x7.conv3d.weight"].shape) == (64, 3, 7, 7, 7)
    assert tuple(keys["logits.conv3d.weight"].shape) == (400, 1024, 1, 1, 1)
    assert len([k for k in keys if not k.endswith("num_batches_tracked")]) == 287  # 57 conv + BN units, logits


def test_i3d_weights_of_another_layout_fail_with_what_was_expected(i3d_weights, tmp_path: Path) -> None:
    import torch

    from argen.errors import UserError
    from argen.evaluate.i3d import load_i3d

    path, clip, features = i3d_weights
    state = torch.load(path, weights_only=True)
    renamed = {k.replace("Mixed_4b", "mixed4b"): v for k, v in state.items()}
    torch.save(renamed, tmp_path / "renamed.pt")
    with pytest.raises(UserError, match=r"not the i3d_pretrained_400 layout.*missing \(e\.g\. \['Mixed_4b"):
        load_i3d(tmp_path / "renamed.pt")
    with pytest.raises(UserError, match="evaluate.i3d_path .*no such file"):
        load_i3d(tmp_path / "absent.pt")
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}  # older conversions
    torch.save(old, tmp_path / "old.pt")
    np.testing.assert_array_equal(load_i3d(tmp_path / "old.pt").features(clip), features)
    with pytest.raises(ValueError, match="16 frames per clip, got 10"):
        load_i3d(path).features(clip[:, :10])


def test_a_torchscript_detector_loads_through_the_same_path(tmp_path: Path) -> None:
    import torch

    from argen.evaluate.i3d import load_i3d

    class Detector(torch.nn.Module):
        """Called as StyleGAN-V calls its i3d_torchscript.pt; returns 400 numbers from the input's moments."""

        def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True,
                    return_features: bool = False) -> torch.Tensor:
            assert not rescale and not resize and return_features
            return x.mean(dim=(1, 2, 3, 4)).unsqueeze(1).repeat(1, 400) + torch.arange(400.0)

    torch.jit.save(torch.jit.script(Detector()), tmp_path / "i3d_torchscript.pt")
    detector = load_i3d(tmp_path / "i3d_torchscript.pt")
    clip = np.full((2, 16, 8, 8, 3), 255, np.uint8)
    features = detector.features(clip)
    assert detector.kind == "torchscript" and features.shape == (2, 400)
    np.testing.assert_allclose(features[0, :3], [1.0, 2.0, 3.0], atol=1e-6)  # 255 -> +1 after preprocessing


def test_preprocessing_is_the_fvd_contract() -> None:
    from argen.evaluate.i3d import preprocess

    clip = np.zeros((16, 20, 40, 3), np.uint8)
    clip[..., 0] = 255
    x = preprocess(clip)
    assert tuple(x.shape) == (1, 3, 16, 224, 224)
    assert float(x[0, 0].min()) == pytest.approx(1.0) and float(x[0, 1].max()) == pytest.approx(-1.0)


def test_lpips_with_random_weights_is_a_distance_and_loads_from_files(tmp_path: Path) -> None:
    import torch

    from argen.errors import UserError
    from argen.evaluate.lpips import LPIPS, load_lpips, mean_pairwise_lpips

    torch.manual_seed(0)
    model = LPIPS().eval()
    for p in model.parameters():  # the heads are non-negative, as trained
        p.data = p.data.abs() if p.dim() == 4 and p.shape[2:] == (1, 1) else p.data
    torch.save({**{k: v for k, v in model.net.state_dict().items()}, "classifier.1.weight": torch.zeros(2)},
               tmp_path / "alexnet.pth")
    torch.save({k: v for k, v in model.state_dict().items() if k.startswith("lin")}, tmp_path / "alex.pth")
    loaded = load_lpips(tmp_path / "alexnet.pth", tmp_path / "alex.pth")
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8) for _ in range(2))
    assert loaded.distance(a, a) == pytest.approx([0.0, 0.0], abs=1e-9)
    np.testing.assert_allclose(loaded.distance(a, b), loaded.distance(b, a), rtol=1e-6)
    assert (loaded.distance(a, b) > 0).all()
    np.testing.assert_allclose(loaded.distance(a, b), model.distance(a, b), rtol=1e-6)
    assert mean_pairwise_lpips(loaded, [a, a]) == pytest.approx(0.0, abs=1e-9)
    torch.save({"lin0.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(UserError, match="lin0.model.1.weight"):
        load_lpips(tmp_path / "alexnet.pth", tmp_path / "wrong.pth")
