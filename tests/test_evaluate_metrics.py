"""Known answers for the Fréchet distance family (eq. 29-33), the diversity figures, and the I3D and LPIPS nets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg

from argen.evaluate.frechet import fd_from_features, fd_with_interval, frechet_distance, gaussian_stats, grouped_fd, \
    mean_pairwise_distance


def random_spd(rng: np.random.Generator, dim: int) -> np.ndarray:
    """A random symmetric positive definite matrix."""
    a = rng.normal(size=(dim, dim))
    return a @ a.T + 0.1 * np.eye(dim)


def sqrtm_reference(mu1, s1, mu2, s2) -> float:
    """The textbook formula through scipy's (complex) matrix square root of S1 S2."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_a_set_against_itself_is_zero() -> None:
    features = np.random.default_rng(0).normal(size=(50, 8))
    assert fd_from_features(features, features.copy()) == pytest.approx(0.0, abs=1e-8)
    for seed in range(5):  # round-off would leave tiny negatives (about -1e-14 for seeds 1 and 3): never < 0
        mu, sigma = gaussian_stats(np.random.default_rng(seed).normal(size=(30, 20)))
        assert 0.0 <= frechet_distance(mu, sigma, mu, sigma) < 1e-8


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
    small = fd_with_interval(rng.normal(size=(10, 16)), rng.normal(size=(30, 16)), n_boot=0)
    assert "rank-deficient" in small.warning and "N=10" in small.warning and small.interval is None
    assert (small.n_real, small.n_generated, small.dim) == (10, 30, 16)
    at_dim = fd_with_interval(rng.normal(size=(16, 16)), rng.normal(size=(40, 16)), n_boot=0)
    assert "rank-deficient" in at_dim.warning
    above = fd_with_interval(rng.normal(size=(17, 16)), rng.normal(size=(40, 16)), n_boot=0)
    assert above.warning == ""


def test_paired_bootstrap_interval_contains_the_value_and_is_reproducible() -> None:
    rng = np.random.default_rng(4)
    real = rng.normal(size=(40, 2))
    generated = real + [1.0, 0.0] + 0.3 * rng.normal(size=(40, 2))
    result = fd_with_interval(real, generated, n_boot=200, seed=7, paired=True)
    assert result.interval[0] < result.value < result.interval[1]
    assert fd_with_interval(real, generated, n_boot=200, seed=7, paired=True) == result
    assert fd_with_interval(real, generated, n_boot=200, seed=8, paired=True).interval != result.interval
    # pairs resampled together: every resample of a set and its exact shift gives the same distance
    shifted = fd_with_interval(real, real + [1.0, 0.0], n_boot=200, seed=7, paired=True)
    assert shifted.value == pytest.approx(1.0) and shifted.interval == pytest.approx((1.0, 1.0))
    unpaired = fd_with_interval(real, real + [1.0, 0.0], n_boot=200, seed=7, paired=False)
    assert unpaired.interval[0] < 1.0 < unpaired.interval[1]
    with pytest.raises(ValueError, match="equal sizes"):
        fd_with_interval(real, generated[:30], n_boot=10, paired=True)


def test_grouped_distances_use_the_right_groups_and_n() -> None:
    rng = np.random.default_rng(5)
    # S1, S2 and S5 in both sets; S3 only in the real set; S4 with a single generated clip
    real = rng.normal(size=(14, 2))
    real_groups = np.array(["S1"] * 4 + ["S2"] * 3 + ["S3"] * 2 + ["S4"] * 2 + ["S5"] * 3)
    generated = np.concatenate([real[:4] + [2.0, 0.0], real[4:7] + [0.0, 1.0], rng.normal(size=(1, 2)),
                                real[11:] + [3.0, 3.0]])
    generated_groups = np.array(["S1"] * 4 + ["S2"] * 3 + ["S4"] + ["S5"] * 3)
    result = grouped_fd(real, real_groups, generated, generated_groups, min_n=2)
    assert result.table.group.tolist() == ["S1", "S2", "S5"] and result.n_groups == 3
    assert result.table.n_real.tolist() == [4, 3, 3] and result.table.n_generated.tolist() == [4, 3, 3]
    # each group is its real clips shifted, so its distance is the squared shift: 4, 1 and 18
    assert result.table.fd.tolist() == pytest.approx([4.0, 1.0, 18.0])
    assert result.mean == pytest.approx((4.0 + 1.0 + 18.0) / 3)
    assert result.sd == pytest.approx(np.std([4.0, 1.0, 18.0], ddof=1))
    assert (result.table.warning == "").all()  # every N above the 2 feature dimensions
    skipped = result.skipped.set_index("group")
    assert skipped.reason.to_dict() == {"S3": "only in real", "S4": "N < 2"}
    assert skipped.loc["S3", ["n_real", "n_generated"]].tolist() == [2, 0]
    assert skipped.loc["S4", ["n_real", "n_generated"]].tolist() == [2, 1]
    only_generated = grouped_fd(real[:7], real_groups[:7], generated[:8], generated_groups[:8])
    assert only_generated.skipped.reason.tolist() == ["only in generated"]


def test_grouped_bootstrap_resamples_within_groups() -> None:
    rng = np.random.default_rng(6)
    real = rng.normal(size=(12, 2))
    groups = np.array(["a"] * 6 + ["b"] * 6)
    generated = real + np.where(groups[:, None] == "a", [2.0, 0.0], [0.0, 1.0])
    booted = grouped_fd(real, groups, generated, groups, n_boot=50, seed=0, paired=True)
    assert booted.mean == pytest.approx(2.5)
    assert booted.interval == pytest.approx((2.5, 2.5))  # paired shifts: every resample gives the same mean
    noisy = grouped_fd(real, groups, generated + 0.5 * rng.normal(size=(12, 2)), groups, n_boot=50, seed=0)
    assert noisy.interval[0] < noisy.mean < noisy.interval[1]
    assert grouped_fd(real, groups, generated, groups[::-1], n_boot=0).n_groups == 2
    with pytest.raises(ValueError, match="same group"):
        grouped_fd(real, groups, generated, groups[::-1], n_boot=5, paired=True)
    lonely = grouped_fd(real[:6], groups[:6], generated[:6], groups[:6])
    assert lonely.n_groups == 1 and np.isnan(lonely.sd)


def test_mean_pairwise_distance_of_known_points() -> None:
    points = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    assert mean_pairwise_distance(points) == pytest.approx((5 + 4 + 3) / 3)
    assert mean_pairwise_distance(points, metric="cityblock") == pytest.approx((7 + 4 + 3) / 3)
    rectangle = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0], [3.0, 0.0]])  # 6 pairs: sides 3, 4 and diagonals 5
    assert mean_pairwise_distance(rectangle) == pytest.approx((3 + 3 + 4 + 4 + 5 + 5) / 6)
    assert np.isnan(mean_pairwise_distance(points[:1]))


# --- the FVD detector and LPIPS (random weights: the real ones are never downloaded) ----------------------

@pytest.fixture(scope="module")
def i3d_weights(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A seeded random InceptionI3d saved as a state dict, a 16-frame clip and its features (one forward)."""
    import torch

    from argen.evaluate.i3d import FVDDetector, InceptionI3d

    torch.manual_seed(0)
    model = InceptionI3d().eval()
    path = tmp_path_factory.mktemp("i3d") / "i3d_pretrained_400.pt"
    torch.save(model.state_dict(), path)
    clip = np.random.default_rng(0).integers(0, 256, (1, 16, 32, 40, 3), dtype=np.uint8)
    return path, clip, FVDDetector(model, "state_dict", str(path), "cpu").features(clip)


def test_i3d_maps_a_16_frame_clip_to_400_logits_and_its_state_dict_round_trips(i3d_weights, tmp_path: Path) -> None:
    import torch

    from argen.evaluate.i3d import load_i3d

    path, clip, features = i3d_weights
    assert features.shape == (1, 400) and features.dtype == np.float64 and np.isfinite(features).all()
    assert features.std() > 0
    # the published conversion has no num_batches_tracked buffers: it loads all the same (second forward)
    state = torch.load(path, weights_only=True)
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, tmp_path / "tf.pt")
    loaded = load_i3d(tmp_path / "tf.pt")
    assert loaded.kind == "state_dict" and loaded.path == str(tmp_path / "tf.pt")
    assert not loaded.model.training
    np.testing.assert_array_equal(loaded.features(clip), features)


def test_i3d_has_the_published_layout() -> None:
    import torch

    from argen.evaluate.i3d import InceptionI3d

    model = InceptionI3d()
    state = model.state_dict()
    # keys and shapes of i3d_pretrained_400.pt (pytorch-i3d's names, TATS's convert_tf_pretrained.py)
    shapes = {"Conv3d_1a_7x7.conv3d.weight": (64, 3, 7, 7, 7), "Conv3d_1a_7x7.bn.running_var": (64,),
              "Conv3d_2b_1x1.conv3d.weight": (64, 64, 1, 1, 1), "Conv3d_2c_3x3.conv3d.weight": (192, 64, 3, 3, 3),
              "Mixed_3b.b0.conv3d.weight": (64, 192, 1, 1, 1), "Mixed_3b.b1b.conv3d.weight": (128, 96, 3, 3, 3),
              "Mixed_4f.b3b.bn.bias": (128,), "Mixed_5b.b2b.conv3d.weight": (128, 32, 3, 3, 3),
              "Mixed_5c.b3b.conv3d.weight": (128, 832, 1, 1, 1), "logits.conv3d.weight": (400, 1024, 1, 1, 1),
              "logits.conv3d.bias": (400,)}
    assert {k: tuple(state[k].shape) for k in shapes} == shapes
    # 57 conv + batch-norm units (conv weight, bn weight/bias/running mean/var) and the logits' weight and bias
    assert len([k for k in state if not k.endswith("num_batches_tracked")]) == 57 * 5 + 2
    assert len(list(model.parameters())) == 57 * 3 + 2
    assert not any(k.startswith("logits.bn") for k in state) and "Conv3d_1a_7x7.conv3d.bias" not in state
    # batch norm as the Sonnet model the TF-Hub weights come from: eps 1e-3
    assert {m.eps for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d)} == {1e-3}


def test_tf_same_padding() -> None:
    """TF 'SAME': total max(k - s, 0) (size divisible by s) or max(k - size % s, 0), the extra one at the back."""
    from argen.evaluate.i3d import _same_padding

    assert _same_padding(224, 7, 2) == (2, 3)  # Conv3d_1a_7x7 in space
    assert _same_padding(16, 7, 2) == (2, 3)  # and in time
    assert _same_padding(112, 3, 2) == (0, 1)  # MaxPool3d_2a_3x3
    assert _same_padding(8, 1, 1) == (0, 0) and _same_padding(8, 3, 1) == (1, 1)
    assert _same_padding(7, 3, 2) == (1, 1) and _same_padding(4, 2, 2) == (0, 0)


def test_i3d_weights_of_another_layout_fail_with_what_was_expected(i3d_weights, tmp_path: Path) -> None:
    import torch

    from argen.errors import UserError
    from argen.evaluate.i3d import load_i3d

    path, clip, _ = i3d_weights
    state = torch.load(path, weights_only=True)  # 30 parameter tensors of Mixed_4b and its 6 counters renamed
    torch.save({k.replace("Mixed_4b", "mixed4b"): v for k, v in state.items()}, tmp_path / "renamed.pt")
    with pytest.raises(UserError, match=r"renamed.pt: not the i3d_pretrained_400 layout.*30 missing "
                                        r"\(e\.g\. \['Mixed_4b.*36 unexpected"):
        load_i3d(tmp_path / "renamed.pt")
    torch.save({k: v for k, v in state.items() if not k.startswith("Mixed_5c.")}, tmp_path / "short.pt")
    with pytest.raises(UserError, match=r"i3d_pretrained_400 layout.*30 missing .*0 unexpected"):
        load_i3d(tmp_path / "short.pt")
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="Conv3d_1a_7x7.conv3d.weight"):
        load_i3d(tmp_path / "other.pt")
    with pytest.raises(UserError, match="evaluate.i3d_path .*absent.pt: no such file"):
        load_i3d(tmp_path / "absent.pt")
    with pytest.raises(ValueError, match="16 frames per clip, got 10"):
        load_i3d(path).features(clip[:, :10])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit's; StyleGAN-V's detector is TorchScript
def test_a_torchscript_detector_loads_through_the_same_path(tmp_path: Path) -> None:
    import torch

    from argen.evaluate.i3d import load_i3d

    class Detector(torch.nn.Module):
        """Called as the FVD codes call StyleGAN-V's i3d_torchscript.pt; 400 numbers from the input's mean."""

        def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True,
                    return_features: bool = False) -> torch.Tensor:
            assert not rescale and not resize and return_features
            assert x.shape[1:] == (3, 16, 224, 224)
            return x.mean(dim=(1, 2, 3, 4)).unsqueeze(1).repeat(1, 400) + torch.arange(400.0)

    torch.jit.save(torch.jit.script(Detector()), tmp_path / "i3d_torchscript.pt")
    detector = load_i3d(tmp_path / "i3d_torchscript.pt")
    clips = np.zeros((3, 16, 8, 8, 3), np.uint8)
    clips[0] = 255
    features = detector.features(clips, batch_size=2)
    assert detector.kind == "torchscript" and features.shape == (3, 400) and features.dtype == np.float64
    np.testing.assert_allclose(features[:, :3], [[1.0, 2.0, 3.0], [-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]], atol=1e-6)


def test_preprocessing_is_the_fvd_contract() -> None:
    from argen.evaluate.i3d import preprocess, sample_frames

    clip = np.zeros((16, 20, 40, 3), np.uint8)
    clip[..., 0] = 255
    clip[:, :, 30:, 1] = 255  # the right quarter green: a plain resize keeps it, a centre crop would cut it
    x = preprocess(clip)
    assert tuple(x.shape) == (1, 3, 16, 224, 224) and x.dtype.is_floating_point
    assert float(x[0, 0].min()) == pytest.approx(1.0) and float(x[0, 2].max()) == pytest.approx(-1.0)
    assert float(x[0, 1, :, :, :160].max()) == pytest.approx(-1.0)
    assert float(x[0, 1, :, :, 176:].min()) == pytest.approx(1.0)
    frames = np.arange(40).reshape(40, 1, 1, 1).repeat(3, axis=3).astype(np.uint8)
    picked = sample_frames(frames, 16)[:, 0, 0, 0]
    assert len(picked) == 16 and picked[0] == 0 and picked[-1] == 39 and (np.diff(picked.astype(int)) > 0).all()
    with pytest.raises(ValueError, match="16 frames per clip, got 10"):
        preprocess(clip[:10])
    with pytest.raises(ValueError, match="uint8"):
        preprocess(clip.astype(np.float32))


def _random_lpips():
    """A seeded LPIPS with random backbone and non-negative heads (as trained)."""
    import torch

    from argen.evaluate.lpips import LPIPS

    torch.manual_seed(0)
    model = LPIPS().eval()
    for index in range(5):
        head = getattr(model, f"lin{index}").model[1].weight
        head.data = head.data.abs()
    return model


def test_lpips_with_random_weights_is_a_distance_and_loads_from_files(tmp_path: Path) -> None:
    import torch

    from argen.errors import UserError
    from argen.evaluate.lpips import load_lpips, mean_pairwise_lpips

    model = _random_lpips()
    # torchvision's AlexNet file also holds the classifier; the heads file only lin0..lin4
    torch.save({**{f"features.{k}": v for k, v in model.net.features.state_dict().items()},
                "classifier.1.weight": torch.zeros(4096, 9216)}, tmp_path / "alexnet.pth")
    torch.save({k: v for k, v in model.state_dict().items() if k.startswith("lin")}, tmp_path / "alex.pth")
    loaded = load_lpips(tmp_path / "alexnet.pth", tmp_path / "alex.pth")
    assert not loaded.training
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8) for _ in range(2))
    assert loaded.distance(a, a) == pytest.approx([0.0, 0.0], abs=1e-9)
    np.testing.assert_allclose(loaded.distance(a, b), loaded.distance(b, a), rtol=1e-6)
    assert (loaded.distance(a, b) > 0).all()
    np.testing.assert_allclose(loaded.distance(a, b), model.distance(a, b), rtol=1e-6)
    assert mean_pairwise_lpips(loaded, [a, a]) == pytest.approx(0.0, abs=1e-9)
    assert mean_pairwise_lpips(loaded, [a, b, a]) == pytest.approx(2 / 3 * loaded.distance(a, b).mean(), rel=1e-6)
    torch.save({"lin0.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(UserError, match="evaluate.lpips_heads_path .*wrong.pth.*lin0.model.1.weight"):
        load_lpips(tmp_path / "alexnet.pth", tmp_path / "wrong.pth")
    with pytest.raises(UserError, match="evaluate.lpips_alexnet_path .*alex.pth.*features.0.weight"):
        load_lpips(tmp_path / "alex.pth", tmp_path / "alex.pth")
    with pytest.raises(UserError, match="evaluate.lpips_heads_path .*absent.pth: no such file"):
        load_lpips(tmp_path / "alexnet.pth", tmp_path / "absent.pth")


def test_lpips_is_the_published_formula() -> None:
    """Scaling layer, unit-normalised ReLU outputs, 1x1 heads, spatial mean, sum (lpips 0.1.4, 'alex')."""
    import torch

    model = _random_lpips()
    rng = np.random.default_rng(1)
    a, b = (rng.integers(0, 256, (1, 48, 56, 3), dtype=np.uint8) for _ in range(2))
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def relu_outputs(frames: np.ndarray) -> list[torch.Tensor]:
        x = torch.from_numpy(frames.astype(np.float32)).permute(0, 3, 1, 2) / 127.5 - 1
        x, taps = (x - shift) / scale, []
        for index, layer in enumerate(model.net.features):
            x = layer(x)
            if isinstance(layer, torch.nn.ReLU):
                taps.append(x)
        return taps

    expected = 0.0
    with torch.no_grad():
        for index, (x, y) in enumerate(zip(relu_outputs(a), relu_outputs(b))):
            x, y = x / (x.norm(dim=1, keepdim=True) + 1e-10), y / (y.norm(dim=1, keepdim=True) + 1e-10)
            weight = getattr(model, f"lin{index}").model[1].weight[0, :, 0, 0]
            expected += float((((x - y) ** 2) * weight.view(1, -1, 1, 1)).sum(dim=1).mean())
    assert model.distance(a, b)[0] == pytest.approx(expected, rel=1e-5)
    assert [k for k in model.state_dict() if k.startswith("net.")][:2] == ["net.features.0.weight",
                                                                            "net.features.0.bias"]


def test_small_n_bootstrap_bias_is_flagged_and_cancels_in_the_difference_to_the_floor() -> None:
    from argen.evaluate.frechet import fd_difference

    rng = np.random.default_rng(11)
    real, generated = rng.normal(size=(20, 16)), rng.normal(size=(20, 16)) + 0.3
    result = fd_with_interval(real, generated, n_boot=300, seed=0)
    assert result.interval[0] > result.value  # every resample inflates the distance ...
    assert "misses the full-sample value" in result.warning  # ... and the result says so
    floor = real[rng.permutation(20)] + rng.normal(scale=0.1, size=(20, 16))
    same, interval = fd_difference(real, generated, generated.copy(), n_boot=200, seed=0)
    assert same == 0.0 and interval == (0.0, 0.0)
    excess, interval = fd_difference(real, generated, floor, n_boot=300, seed=0)
    assert excess == pytest.approx(fd_from_features(real, generated) - fd_from_features(real, floor))
    assert interval[0] <= excess <= interval[1]  # the bias of both distances cancels
