"""LPIPS (Zhang et al. 2018, 'alex', v0.1) in plain PyTorch, for the diversity figure of table 8.

The ``lpips`` package imports torchvision (absent here) and ships only the linear heads; so this module
builds AlexNet's convolutional ``features`` itself and loads two local files: torchvision's AlexNet ImageNet
state dict (keys ``features.0.weight`` ... ``features.10.bias``; ``classifier.*`` is ignored) and the
package's ``weights/v0.1/alex.pth`` (keys ``lin0.model.1.weight`` ... ``lin4.model.1.weight``).
Distance: inputs in [-1, 1], shifted and scaled by LPIPS's ScalingLayer; each of the five ReLU outputs
unit-normalised over channels; squared differences weighted by the 1x1 heads, averaged over space, summed.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import torch
from torch import nn

from argen.errors import UserError

SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
CHANNELS = (64, 192, 384, 256, 256)


class AlexFeatures(nn.Module):
    """torchvision's ``alexnet().features`` (same indices), returning the five ReLU outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for k, layer in enumerate(self.features):
            x = layer(x)
            if k in (1, 4, 7, 9, 11):
                taps.append(x)
        return taps


class LinearHead(nn.Module):
    """LPIPS's ``NetLinLayer``: dropout then a 1x1 convolution without bias (key ``model.1.weight``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


class LPIPS(nn.Module):
    """The distance; ``heads`` holds lin0..lin4 as the package names them."""

    def __init__(self) -> None:
        super().__init__()
        self.net = AlexFeatures()
        for k, channels in enumerate(CHANNELS):
            self.add_module(f"lin{k}", LinearHead(channels))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(B,) distances between image batches (B, 3, H, W) in [-1, 1]."""
        fa, fb = self.net((a - SHIFT) / SCALE), self.net((b - SHIFT) / SCALE)
        total = 0.0
        for k, (x, y) in enumerate(zip(fa, fb)):
            x = x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            y = y / (y.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            total = total + getattr(self, f"lin{k}").model[1]((x - y) ** 2).mean(dim=(2, 3))
        return total.flatten()

    @torch.no_grad()
    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """LPIPS between uint8 RGB frames (B, H, W, 3) of equal size."""
        def tensor(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.asarray(x, np.float32)).permute(0, 3, 1, 2) / 127.5 - 1.0
        return self(tensor(a), tensor(b)).double().numpy()


def _load(path: str | Path, what: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file
        raise UserError(f"{what} {path}: not a state dict ({err})") from err
    if not isinstance(state, dict):
        raise UserError(f"{what} {path}: holds a {type(state).__name__}, not a state dict")
    return state


def load_lpips(alexnet_path: str | Path, heads_path: str | Path, device: str = "cpu") -> LPIPS:
    """LPIPS from torchvision's AlexNet state dict and the lpips package's ``alex.pth`` (module docstring).

    Raises:
        UserError: a file is missing or lacks the expected keys (named in the message).
    """
    model = LPIPS()
    backbone = {k: v for k, v in _load(alexnet_path, "evaluate.lpips_alexnet_path").items() if k.startswith("features.")}
    heads = _load(heads_path, "evaluate.lpips_heads_path")
    for state, module, what, path, example in ((backbone, model.net, "evaluate.lpips_alexnet_path", alexnet_path,
                                                "features.0.weight ... features.10.bias (torchvision's AlexNet)"),
                                               (heads, None, "evaluate.lpips_heads_path", heads_path,
                                                "lin0.model.1.weight ... lin4.model.1.weight (lpips' alex.pth)")):
        expected = module.state_dict() if module is not None else \
            {k: v for k, v in model.state_dict().items() if k.startswith("lin")}
        missing = [k for k in expected if k not in state or tuple(state[k].shape) != tuple(expected[k].shape)]
        if missing or set(state) - set(expected):
            raise UserError(f"{what} {path}: expected the keys {example}; missing or misshapen: {missing[:3]}, "
                            f"unexpected: {sorted(set(state) - set(expected))[:3]}")
        (module or model).load_state_dict(state, strict=module is not None)
    return model.to(device).eval()


def mean_pairwise_lpips(model: LPIPS, clips: list[np.ndarray]) -> float:
    """Diversity: the mean over pairs of clips of their mean per-frame LPIPS (clips: (F, H, W, 3) uint8, same F)."""
    values = [float(model.distance(a, b).mean()) for a, b in combinations(clips, 2)]
    return float(np.mean(values)) if values else float("nan")
