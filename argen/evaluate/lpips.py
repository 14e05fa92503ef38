"""LPIPS (Zhang et al. 2018, 'alex' net, version 0.1) in plain PyTorch, for the diversity figure.

The ``lpips`` package imports torchvision (absent here) and ships only the linear heads, so this module
builds AlexNet's convolutional ``features`` itself and loads two local files: torchvision's AlexNet ImageNet
state dict (keys ``features.0.weight`` ... ``features.10.bias``; ``classifier.*`` is ignored) and the
package's ``weights/v0.1/alex.pth`` (keys ``lin0.model.1.weight`` ... ``lin4.model.1.weight``).

The distance, as the package computes it (``lpips/lpips.py`` and ``pretrained_networks.py`` of lpips 0.1.4):
inputs in [-1, 1] pass the ScalingLayer ``(x - shift) / scale``; AlexNet's five ReLU outputs (after
``features.1``, ``.4``, ``.7``, ``.9``, ``.11``) of both images are each divided by their L2 norm over
channels (+1e-10); the squared differences go through each layer's 1x1 head (no bias), are averaged over
space, and the five layers are summed.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import torch
from torch import nn

from argen.errors import UserError

#: LPIPS's ScalingLayer constants (per RGB channel, for inputs in [-1, 1]).
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
#: channels of AlexNet's five tapped ReLU outputs, the widths of the heads lin0..lin4.
CHANNELS = (64, 192, 384, 256, 256)
#: indices in ``features`` of the ReLUs whose outputs LPIPS compares.
TAPS = (1, 4, 7, 9, 11)


class AlexFeatures(nn.Module):
    """torchvision's ``alexnet().features`` up to its last ReLU (same indices, so the same keys)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> the five ReLU outputs."""
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in TAPS:
                taps.append(x)
        return taps


class LinearHead(nn.Module):
    """LPIPS's ``NetLinLayer``: dropout, then a 1x1 convolution to one channel without bias (``model.1.weight``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _unit_channels(x: torch.Tensor) -> torch.Tensor:
    """Divide every position's feature vector by its L2 norm over channels (LPIPS's ``normalize_tensor``)."""
    return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)


class LPIPS(nn.Module):
    """The LPIPS distance: the AlexNet backbone ``net`` and the heads ``lin0`` ... ``lin4`` (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = AlexFeatures()
        for index, channels in enumerate(CHANNELS):
            self.add_module(f"lin{index}", LinearHead(channels))
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distances between two image batches.

        Args:
            a, b: float (B, 3, H, W) in [-1, 1].

        Returns:
            (B,) distances.
        """
        taps_a = self.net((a - self.shift) / self.scale)
        taps_b = self.net((b - self.shift) / self.scale)
        total = torch.zeros(len(a), device=a.device)
        for index, (x, y) in enumerate(zip(taps_a, taps_b)):
            head = getattr(self, f"lin{index}")
            total = total + head((_unit_channels(x) - _unit_channels(y)) ** 2).mean(dim=(1, 2, 3))
        return total

    @torch.no_grad()
    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """LPIPS between matched uint8 RGB frames.

        Args:
            a, b: uint8 (B, H, W, 3) frames of one size; frame i of ``a`` is compared with frame i of ``b``.

        Returns:
            float64 (B,) distances.

        Raises:
            ValueError: batches of different shapes or not (B, H, W, 3).
        """
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.ndim != 4 or a.shape[-1] != 3:
            raise ValueError(f"LPIPS compares uint8 frame batches (B, H, W, 3) of one shape, got {a.shape} "
                             f"and {b.shape}")
        device = self.shift.device

        def to_tensor(frames: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(frames.astype(np.float32)).permute(0, 3, 1, 2).to(device) / 127.5 - 1.0

        return self(to_tensor(a), to_tensor(b)).double().cpu().numpy()


def _load_state(path: str | Path, param: str) -> dict:
    """A state dict from a local file; ``param`` (the params.yaml key) names it in errors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{param} {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip or tensor errors all mean "not a weights file"
        raise UserError(f"{param} {path}: not a state dict ({err})") from err
    if not isinstance(state, dict):
        raise UserError(f"{param} {path}: holds a {type(state).__name__}, not a state dict")
    return state


def _check_layout(state: dict, expected: dict, param: str, path: str | Path, what: str) -> None:
    """Raise a UserError naming the file, the expected keys and what differs, unless ``state`` matches ``expected``."""
    missing = [k for k in expected
               if k not in state or tuple(getattr(state[k], "shape", ())) != tuple(expected[k].shape)]
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise UserError(f"{param} {path}: expected {what}, keys {sorted(expected)[:2]} ... with their shapes; "
                        f"missing or of another shape: {missing[:3]}, unexpected: {unexpected[:3]}")


def load_lpips(alexnet_path: str | Path, heads_path: str | Path, device: str = "cpu") -> LPIPS:
    """LPIPS from torchvision's AlexNet state dict and the lpips package's ``alex.pth`` (module docstring).

    Args:
        alexnet_path: torchvision's AlexNet ImageNet weights (``features.*``; ``classifier.*`` is ignored).
        heads_path: ``weights/v0.1/alex.pth`` of the lpips package (``lin0.model.1.weight`` ...).
        device: where the model runs.

    Returns:
        The :class:`LPIPS` model in eval mode.

    Raises:
        UserError: a file is missing or lacks the expected keys (named in the message).
    """
    model = LPIPS()
    backbone = {k: v for k, v in _load_state(alexnet_path, "evaluate.lpips_alexnet_path").items()
                if not k.startswith("classifier.")}
    expected_backbone = model.net.state_dict()
    _check_layout(backbone, expected_backbone, "evaluate.lpips_alexnet_path", alexnet_path,
                  "torchvision's AlexNet state dict (features.0.weight ... features.10.bias)")
    heads = _load_state(heads_path, "evaluate.lpips_heads_path")
    expected_heads = {k: v for k, v in model.state_dict().items() if k.startswith("lin")}
    _check_layout(heads, expected_heads, "evaluate.lpips_heads_path", heads_path,
                  "the lpips package's weights/v0.1/alex.pth (lin0.model.1.weight ... lin4.model.1.weight)")
    model.net.load_state_dict(backbone, strict=True)
    model.load_state_dict({**model.state_dict(), **heads}, strict=True)
    return model.to(device).eval()


def mean_pairwise_lpips(model: LPIPS, clips: list[np.ndarray]) -> float:
    """Diversity of a set of clips: the mean over pairs of clips of their mean per-frame LPIPS.

    Frame i of one clip is compared with frame i of the other (clips sampled alike, e.g. evenly spaced
    frames), so a pair's figure is the mean of its frames' distances, and every pair weighs the same.

    Args:
        model: the :class:`LPIPS` model.
        clips: uint8 (F, H, W, 3) clips, all of one shape.

    Returns:
        The mean; NaN for fewer than 2 clips.
    """
    values = [float(model.distance(a, b).mean()) for a, b in combinations(clips, 2)]
    return float(np.mean(values)) if values else float("nan")
