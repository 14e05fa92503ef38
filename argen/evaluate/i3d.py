"""The FVD detector: Inception-I3D (Kinetics-400) in plain PyTorch, loading the standard weights locally.

Two files are in common use (DESIGN.md, FVD contract):

* ``i3d_pretrained_400.pt``: a state dict of DeepMind's TF-Hub I3D (``deepmind/i3d-kinetics-400/1``, the model
  of Google's reference FVD) converted to the layout of piergiaj/pytorch-i3d's ``InceptionI3d`` (keys such as
  ``Conv3d_1a_7x7.conv3d.weight``, ``Mixed_5c.b3b.bn.running_var``, ``logits.conv3d.bias``; no
  ``num_batches_tracked``), as songweige/TATS ``tats/fvd/convert_tf_pretrained.py`` writes it and
  wilson1yan/VideoGPT ``videogpt/fvd/fvd.py`` loads it. :class:`InceptionI3d` below has exactly that layout
  (checked against piergiaj/pytorch-i3d ``pytorch_i3d.py`` and VideoGPT ``videogpt/fvd/pytorch_i3d.py``):
  TF "SAME" padding computed from the input size before each convolution and max pooling, then a
  (2, 7, 7) average pool with stride 1, the 1x1x1 ``logits`` convolution with bias, and its 400 outputs
  averaged over the remaining time steps (the TF graph's ``RGB/inception_i3d/Mean:0`` that Google's
  reference reads). Batch norm eps is 1e-3, the Sonnet default the TF weights were trained with (VideoGPT's
  copy uses 1e-5; the difference is negligible).
* StyleGAN-V's ``i3d_torchscript.pt``: loaded with ``torch.jit.load``. universome/stylegan-v
  ``src/metrics/frechet_video_distance.py`` and ``metric_utils.py`` call it as
  ``detector(x, rescale=True, resize=True, return_features=True)`` on uint8-valued (B, 3, T, H, W) videos,
  letting it rescale to [-1, 1] and resize to 224 itself; ``return_features=True`` returns the 400
  pre-softmax logits. Here it is called as the FVD codes built on it do (e.g.
  JunyaoHu/common_metrics_on_video_quality ``fvd/styleganv/fvd.py``): ``rescale=False, resize=False`` on
  videos already preprocessed below, so both formats see the same input.

Preprocessing (Google's reference ``frechet_video_distance.py``, ``preprocess``): uint8 RGB frames, 16 per
clip, each frame resized to 224 x 224 with bilinear interpolation (no crop, aspect ratio not kept) and
scaled to [-1, 1] as ``x / 127.5 - 1``. The resize is ``torch.nn.functional.interpolate(mode="bilinear",
align_corners=False)`` without antialiasing; TF1's ``resize_bilinear`` samples on a grid offset by half a
pixel from this one, a small difference for the upsampling face crops need.
No weights are downloaded: the path comes from ``evaluate.i3d_path``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from argen.errors import UserError

N_FRAMES = 16
SIZE = 224


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF 'SAME' padding of one dimension.

    Args:
        size: the input's length along the dimension.
        kernel, stride: the operation's kernel size and stride along it.

    Returns:
        (front, back) padding; the odd extra element goes at the back, as in TF.
    """
    total = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    """Zero-pad a (B, C, T, H, W) tensor so that a valid operation on it gives TF 'SAME' output sizes."""
    (t0, t1), (h0, h1), (w0, w1) = (_same_padding(s, k, st) for s, k, st in zip(x.shape[2:], kernel, stride))
    return F.pad(x, (w0, w1, h0, h1, t0, t1))


class MaxPool3dSame(nn.Module):
    """Max pooling after TF 'SAME' zero padding (its inputs follow a ReLU, so zeros act as TF's -inf)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class Unit3D(nn.Module):
    """Conv3d with TF 'SAME' padding, then batch norm and ReLU (the logits layer: a conv with bias only)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), batch_norm: bool = True, relu: bool = True,
                 bias: bool = False) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = kernel, stride, relu
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class InceptionModule(nn.Module):
    """Four branches, concatenated: 1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; 3x3x3 max pool -> 1x1."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_channels, widths[0])
        self.b1a = Unit3D(in_channels, widths[1])
        self.b1b = Unit3D(widths[1], widths[2], (3, 3, 3))
        self.b2a = Unit3D(in_channels, widths[3])
        self.b2b = Unit3D(widths[3], widths[4], (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, widths[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


def _layers() -> list[tuple[str, nn.Module]]:
    """The layers before the logits, in order, named as pytorch-i3d names them (the state dict's prefixes)."""
    return [
        ("Conv3d_1a_7x7", Unit3D(3, 64, (7, 7, 7), (2, 2, 2))),
        ("MaxPool3d_2a_3x3", MaxPool3dSame((1, 3, 3), (1, 2, 2))),
        ("Conv3d_2b_1x1", Unit3D(64, 64)),
        ("Conv3d_2c_3x3", Unit3D(64, 192, (3, 3, 3))),
        ("MaxPool3d_3a_3x3", MaxPool3dSame((1, 3, 3), (1, 2, 2))),
        ("Mixed_3b", InceptionModule(192, (64, 96, 128, 16, 32, 32))),
        ("Mixed_3c", InceptionModule(256, (128, 128, 192, 32, 96, 64))),
        ("MaxPool3d_4a_3x3", MaxPool3dSame((3, 3, 3), (2, 2, 2))),
        ("Mixed_4b", InceptionModule(480, (192, 96, 208, 16, 48, 64))),
        ("Mixed_4c", InceptionModule(512, (160, 112, 224, 24, 64, 64))),
        ("Mixed_4d", InceptionModule(512, (128, 128, 256, 24, 64, 64))),
        ("Mixed_4e", InceptionModule(512, (112, 144, 288, 32, 64, 64))),
        ("Mixed_4f", InceptionModule(528, (256, 160, 320, 32, 128, 128))),
        ("MaxPool3d_5a_2x2", MaxPool3dSame((2, 2, 2), (2, 2, 2))),
        ("Mixed_5b", InceptionModule(832, (256, 160, 320, 32, 128, 128))),
        ("Mixed_5c", InceptionModule(832, (384, 192, 384, 48, 128, 128))),
    ]


class InceptionI3d(nn.Module):
    """Inception-I3D with pytorch-i3d's parameter names (module docstring).

    Args:
        num_classes: outputs of the logits layer (400 for Kinetics-400).
    """

    def __init__(self, num_classes: int = 400) -> None:
        super().__init__()
        layers = _layers()
        for name, layer in layers:
            self.add_module(name, layer)
        self.order = [name for name, _ in layers]
        self.logits = Unit3D(1024, num_classes, batch_norm=False, relu=False, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, 224, 224) in [-1, 1] -> (B, num_classes) logits averaged over time."""
        for name in self.order:
            x = getattr(self, name)(x)
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)  # (B, 1024, T/8 - 1, 1, 1)
        return self.logits(x).squeeze(-1).squeeze(-1).mean(dim=2)


def sample_frames(frames: np.ndarray, n_frames: int = N_FRAMES) -> np.ndarray:
    """Evenly spaced frames of a clip, first and last included.

    Args:
        frames: (T, H, W, 3) clip.
        n_frames: how many to pick; frames repeat when T < n_frames.

    Returns:
        (n_frames, H, W, 3) frames.

    Raises:
        ValueError: an empty clip.
    """
    if len(frames) == 0:
        raise ValueError("cannot sample frames from an empty clip")
    index = np.linspace(0, len(frames) - 1, n_frames).round().astype(int)
    return frames[index]


def preprocess(clips: np.ndarray, n_frames: int = N_FRAMES) -> torch.Tensor:
    """uint8 RGB clips to the detector's input (module docstring).

    Args:
        clips: uint8 (B, T, H, W, 3) or (T, H, W, 3) RGB frames.
        n_frames: the frames each clip must have (:func:`sample_frames` picks them).

    Returns:
        float32 (B, 3, T, 224, 224) in [-1, 1].

    Raises:
        ValueError: not uint8 RGB clips, or a clip of another frame count.
    """
    clips = np.asarray(clips)
    if clips.ndim == 4:
        clips = clips[None]
    if clips.dtype != np.uint8 or clips.ndim != 5 or clips.shape[-1] != 3:
        raise ValueError(f"I3D takes uint8 RGB clips (B, T, H, W, 3), got {clips.dtype} {clips.shape}")
    if clips.shape[1] != n_frames:
        raise ValueError(f"I3D takes {n_frames} frames per clip, got {clips.shape[1]} "
                         f"(sample_frames picks {n_frames} evenly spaced ones)")
    b, t, h, w, _ = clips.shape
    x = torch.from_numpy(clips).float().permute(0, 1, 4, 2, 3).reshape(b * t, 3, h, w)
    x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    x = x / 127.5 - 1.0
    return x.reshape(b, t, 3, SIZE, SIZE).permute(0, 2, 1, 3, 4).contiguous()


class FVDDetector:
    """I3D logits of uint8 clips through either weight format.

    Attributes:
        model: the :class:`InceptionI3d` or the TorchScript module, in eval mode.
        kind: "state_dict" or "torchscript".
        path: the file it was loaded from.
        device: where it runs.
    """

    def __init__(self, model: nn.Module, kind: str, path: str, device: str) -> None:
        self.model, self.kind, self.path, self.device = model, kind, path, device

    @torch.no_grad()
    def features(self, clips: np.ndarray, batch_size: int = 8) -> np.ndarray:
        """The 400 logits of each clip.

        Args:
            clips: uint8 (B, 16, H, W, 3) or (16, H, W, 3) RGB clips.
            batch_size: clips per forward pass.

        Returns:
            float64 (B, 400).
        """
        clips = np.asarray(clips)
        if clips.ndim == 4:
            clips = clips[None]
        out = []
        for start in range(0, len(clips), batch_size):
            x = preprocess(clips[start:start + batch_size]).to(self.device)
            if self.kind == "torchscript":
                logits = self.model(x, rescale=False, resize=False, return_features=True)
            else:
                logits = self.model(x)
            out.append(logits.double().cpu().numpy())
        return np.concatenate(out)


def _is_torchscript(path: Path) -> bool:
    """Whether a file is a TorchScript archive (a zip holding ``constants.pkl`` and compiled ``code/``)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") or "/code/" in name for name in archive.namelist())


def load_i3d(path: str | Path, device: str = "cpu") -> FVDDetector:
    """The FVD detector from a local file (module docstring).

    Args:
        path: ``i3d_pretrained_400.pt`` (a state dict) or StyleGAN-V's ``i3d_torchscript.pt``.
        device: where the detector runs.

    Returns:
        The :class:`FVDDetector`, in eval mode.

    Raises:
        UserError: the file is missing, or is neither a TorchScript detector nor a state dict of the
            ``i3d_pretrained_400`` layout (the message lists what was expected and what was found).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"evaluate.i3d_path {path}: no such file; set evaluate.i3d_path to a local "
                        f"i3d_pretrained_400.pt (the TF-Hub Kinetics-400 I3D as a pytorch-i3d state dict) or "
                        f"StyleGAN-V's i3d_torchscript.pt")
    if _is_torchscript(path):
        model = torch.jit.load(str(path), map_location=device).eval()
        return FVDDetector(model, "torchscript", str(path), device)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # pickle, zip or tensor errors all mean "not a weights file"
        raise UserError(f"evaluate.i3d_path {path}: not a state dict or TorchScript file ({err})") from err
    if not isinstance(state, dict):
        raise UserError(f"evaluate.i3d_path {path}: holds a {type(state).__name__}, not a state dict")
    model = InceptionI3d()
    expected = model.state_dict()
    # the published conversion has no num_batches_tracked buffers (unused in eval mode): the model's own fill in
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    misshapen = [k for k in expected
                 if k in state and tuple(getattr(state[k], "shape", ())) != tuple(expected[k].shape)]
    if missing or unexpected or misshapen:
        raise UserError(
            f"evaluate.i3d_path {path}: not the i3d_pretrained_400 layout (pytorch-i3d's InceptionI3d with 400 "
            f"classes, keys 'Conv3d_1a_7x7.conv3d.weight' ... 'logits.conv3d.bias'): {len(missing)} missing "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), {len(misshapen)} of "
            f"another shape (e.g. {misshapen[:3]}); StyleGAN-V's i3d_torchscript.pt is the other file accepted")
    counters = {k: v for k, v in expected.items() if k.endswith("num_batches_tracked")}
    model.load_state_dict({**counters, **state}, strict=True)
    return FVDDetector(model.to(device).eval(), "state_dict", str(path), device)
