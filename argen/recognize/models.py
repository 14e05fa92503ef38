"""DFER recognition models in plain PyTorch, built by name (paper sec. 4.1, table 2).

Five video models and one geometry baseline, all mapping a clip to class logits:

* **Frame encoder + temporal head** (``Res18_LSTM``, ``Res18_Transformer``, ``VGG13_LSTM``,
  ``VGG13_Transformer``): :class:`VideoClassifier` encodes every frame with a 2-D CNN
  (:class:`ResNet18Encoder` or :class:`VGG13Encoder`, ImageNet-normalised input), runs an
  :class:`LSTMHead` or :class:`TransformerHead` over the frame features in order, and classifies the result
  with one linear layer. ``width=64`` gives the standard ResNet-18 / VGG-13-BN; the CPU demo uses a
  narrower ``width`` (channels scale, depth does not). Both CNNs end in global average pooling, so any
  frame size of at least 32 px works.
* **DFER-CLIP** (``DFER_CLIP``, after zengqunzhao/DFER-CLIP): :class:`DFERCLIP` embeds each frame with CLIP's
  image encoder, pools the frames with a small temporal transformer (a learnable video [CLS] token and
  positional embeddings), and compares the video feature by cosine with one text feature per class. The
  text features come from CLIP's frozen text encoder fed with ``n_ctx`` learnable context vectors (shared by
  all classes, CoOp-style) followed by the tokens of a short facial-behaviour descriptor of the class
  (:data:`CLASS_DESCRIPTORS`). The text path is computed by hand from CLIP's modules (token and position
  embeddings, encoder with an explicit causal mask, final layer norm, pooling at the EOS position, text
  projection), which does not depend on ``CLIPTextModel.forward`` accepting embeddings.
* **Landmark_Transformer**: :class:`LandmarkTransformer`, a geometry baseline over per-frame landmark
  features (built elsewhere), with an optional mask of the frames whose landmarks are missing.

:func:`build_model` makes a model from its name in :data:`MODEL_NAMES`; :func:`input_kind` says whether it
takes video clips or geometry features; :func:`optimizer_param_groups` gives its optimizer groups
(DFER-CLIP's three learning rates, or one group for the others).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from argen.errors import UserError

MODEL_NAMES: tuple[str, ...] = (
    "Res18_LSTM", "Res18_Transformer", "VGG13_LSTM", "VGG13_Transformer", "DFER_CLIP", "Landmark_Transformer",
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

#: One short facial-behaviour descriptor per emotion (FACS-like), the class text of DFER-CLIP.
CLASS_DESCRIPTORS: dict[str, str] = {
    "happy": "raised cheeks, pulled up lip corners and narrowed eyes in a smile",
    "sad": "raised inner eyebrows, lowered lip corners and a drooping gaze",
    "neutral": "relaxed eyebrows, relaxed eyes and a closed relaxed mouth",
    "angry": "lowered and drawn together eyebrows, a glaring stare and pressed lips",
    "surprise": "raised eyebrows, widened eyes and an open mouth",
    "disgust": "a wrinkled nose, a raised upper lip and narrowed eyes",
    "fear": "raised and drawn together eyebrows, widened eyes and stretched lips",
}


class ModelWeightsError(UserError):
    """Pretrained weights needed by a model are missing or unreadable; the message names the path."""


# ----------------------------------------------------------------------------------------------------------
# Frame encoders: [N, 3, S, S] float -> [N, out_dim]


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv+BN, identity or 1x1 conv+BN shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class ResNet18Encoder(nn.Module):
    """ResNet-18 with channels (w, 2w, 4w, 8w), global average pooled; ``out_dim = 8 * width``."""

    def __init__(self, width: int = 64):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        blocks, c_in = [], width
        for c_out, stride in ((width, 1), (2 * width, 2), (4 * width, 2), (8 * width, 2)):
            blocks += [BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)]
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.out_dim = 8 * width
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x)).mean(dim=(2, 3))


class VGG13Encoder(nn.Module):
    """VGG-13 with BatchNorm, channels (w, 2w, 4w, 8w, 8w), global average pooled; ``out_dim = 8 * width``."""

    def __init__(self, width: int = 64):
        super().__init__()
        layers, c_in = [], 3
        for c_out in (width, 2 * width, 4 * width, 8 * width, 8 * width):
            for _ in range(2):
                layers += [nn.Conv2d(c_in, c_out, 3, 1, 1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
                c_in = c_out
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.out_dim = 8 * width
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


# ----------------------------------------------------------------------------------------------------------
# Temporal heads: [B, T, D] -> [B, hidden]


class LSTMHead(nn.Module):
    """A stacked LSTM over the frames; returns the last layer's final hidden state."""

    def __init__(self, in_dim: int, hidden: int = 256, layers: int = 2):
        super().__init__()
        self.lstm = nn.LSTM(in_dim, hidden, num_layers=layers, batch_first=True)
        self.out_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)
        return h[-1]


class TransformerHead(nn.Module):
    """A pre-norm transformer over the frames with a learned [CLS] token and positional embeddings.

    The input is projected to ``hidden`` (skipped when ``in_dim == hidden``, so DFER-CLIP's temporal net starts
    in CLIP's embedding space); the output is the [CLS] token after a final LayerNorm.
    """

    def __init__(self, in_dim: int, hidden: int = 256, layers: int = 2, heads: int = 4, max_frames: int = 64):
        super().__init__()
        self.proj = nn.Linear(in_dim, hidden) if in_dim != hidden else nn.Identity()
        self.cls = nn.Parameter(torch.zeros(1, 1, hidden))
        self.pos = nn.Parameter(torch.zeros(1, max_frames + 1, hidden))
        nn.init.normal_(self.cls, std=0.02)
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(
            hidden, heads, 4 * hidden, dropout=0.1, activation="gelu", batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)
        self.max_frames = max_frames
        self.out_dim = hidden

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Args: x [B, T, in_dim]; mask [B, T] bool, True = valid frame (None: all valid). Returns [B, hidden]."""
        b, t, _ = x.shape
        if t > self.max_frames:
            raise ValueError(f"{t} frames exceed max_frames={self.max_frames}")
        x = torch.cat([self.cls.expand(b, -1, -1), self.proj(x)], dim=1) + self.pos[:, : t + 1]
        padding = None
        if mask is not None:  # src_key_padding_mask: True = ignored; the [CLS] token is always attended
            padding = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=x.device), ~mask.bool()], dim=1)
        return self.norm(self.encoder(x, src_key_padding_mask=padding)[:, 0])


# ----------------------------------------------------------------------------------------------------------
# Classifiers


def _normalise(clips: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 [B, T, 3, S, S] RGB -> float [B*T, 3, S, S], scaled to [0, 1] and standardised per channel."""
    frames = clips.flatten(0, 1).float() / 255.0
    return (frames - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


class VideoClassifier(nn.Module):
    """Frame encoder -> temporal head -> linear classifier, over uint8 RGB clips."""

    def __init__(self, encoder: nn.Module, temporal: nn.Module, n_classes: int):
        super().__init__()
        self.encoder = encoder
        self.temporal = temporal
        self.classifier = nn.Linear(temporal.out_dim, n_classes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD), persistent=False)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Args: clips uint8 [B, T, 3, S, S] RGB. Returns logits [B, n_classes]."""
        b, t = clips.shape[:2]
        features = self.encoder(_normalise(clips, self.mean, self.std)).view(b, t, -1)  # all frames in one batch
        return self.classifier(self.temporal(features))


class LandmarkTransformer(nn.Module):
    """Geometry baseline: a :class:`TransformerHead` over per-frame landmark features, then a linear classifier."""

    def __init__(self, in_dim: int, n_classes: int, hidden: int = 64, layers: int = 2, heads: int = 4,
                 max_frames: int = 64):
        super().__init__()
        self.temporal = TransformerHead(in_dim, hidden, layers, heads, max_frames)
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Args: features float [B, T, in_dim]; mask bool [B, T], True = valid frame. Returns logits [B, n_classes]."""
        return self.classifier(self.temporal(features.float(), mask))


class DFERCLIP(nn.Module):
    """DFER-CLIP: CLIP frame features + temporal transformer vs. learnable-prompt class texts, by cosine.

    Args:
        clip: a ``transformers.CLIPModel`` (its text encoder and logit scale are frozen here).
        class_token_ids: per class, the token ids of its descriptor with CLIP's BOS first and EOS last.
        n_ctx: learnable context vectors inserted right after BOS, shared by all classes.
        temporal_layers: layers of the temporal transformer.
        max_frames: the most frames a clip may have.
    """

    def __init__(self, clip: nn.Module, class_token_ids: list[list[int]], n_ctx: int = 8, temporal_layers: int = 1,
                 max_frames: int = 64):
        super().__init__()
        self.clip = clip
        text_cfg = clip.config.text_config
        max_len = text_cfg.max_position_embeddings
        lengths = [len(ids) + n_ctx for ids in class_token_ids]
        for c, length in enumerate(lengths):
            if length > max_len:
                raise ValueError(f"class {c}: descriptor of {length - n_ctx} tokens + {n_ctx} context tokens "
                                 f"exceeds CLIP's {max_len} text positions")
        # Token ids with n_ctx slots after BOS, padded with EOS (each descriptor's own last id: older
        # CLIP configs carry a stale eos_token_id); those slots are replaced by the context vectors, and the
        # causal mask keeps the padding out of the EOS position.
        eos = class_token_ids[0][-1]
        ids = torch.full((len(class_token_ids), max(lengths)), eos, dtype=torch.long)
        for c, tokens in enumerate(class_token_ids):
            ids[c, 0] = tokens[0]
            ids[c, 1 + n_ctx: len(tokens) + n_ctx] = torch.tensor(tokens[1:])
        self.register_buffer("token_ids", ids, persistent=False)
        self.register_buffer("eos_position", torch.tensor(lengths) - 1, persistent=False)
        self.n_ctx = n_ctx
        self.context = nn.Parameter(torch.randn(n_ctx, text_cfg.hidden_size) * 0.02)

        dim = clip.config.projection_dim
        self.temporal = TransformerHead(dim, dim, temporal_layers, heads=math.gcd(dim, 8), max_frames=max_frames)
        for p in [*clip.text_model.parameters(), *clip.text_projection.parameters(), clip.logit_scale]:
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(CLIP_MEAN), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD), persistent=False)

    def text_features(self) -> torch.Tensor:
        """Returns the class text features [n_classes, projection_dim] (not normalised)."""
        text = self.clip.text_model
        tokens = text.embeddings.token_embedding(self.token_ids)
        n_classes, length, _ = tokens.shape
        context = self.context.unsqueeze(0).expand(n_classes, -1, -1)
        x = torch.cat([tokens[:, :1], context, tokens[:, 1 + self.n_ctx:]], dim=1)
        x = x + text.embeddings.position_embedding(torch.arange(length, device=x.device))
        causal = torch.full((length, length), torch.finfo(x.dtype).min, device=x.device).triu(1)
        x = text.encoder(inputs_embeds=x, attention_mask=causal[None, None]).last_hidden_state
        x = text.final_layer_norm(x)
        pooled = x[torch.arange(n_classes, device=x.device), self.eos_position]
        return self.clip.text_projection(pooled)

    def video_features(self, clips: torch.Tensor) -> torch.Tensor:
        """Args: clips uint8 [B, T, 3, S, S] RGB. Returns video features [B, projection_dim] (not normalised)."""
        b, t = clips.shape[:2]
        pooled = self.clip.vision_model(pixel_values=_normalise(clips, self.mean, self.std)).pooler_output
        return self.temporal(self.clip.visual_projection(pooled).view(b, t, -1))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Args: clips uint8 [B, T, 3, S, S] RGB. Returns logits [B, n_classes]: scaled video-text cosines."""
        video = F.normalize(self.video_features(clips), dim=-1)
        text = F.normalize(self.text_features(), dim=-1)
        return self.clip.logit_scale.exp() * video @ text.t()

    def param_groups(self, lr_image: float, lr_temporal: float, lr_prompt: float) -> list[dict]:
        """Optimizer groups: CLIP image encoder, temporal net, context prompts (the text side is frozen)."""
        image = [*self.clip.vision_model.parameters(), *self.clip.visual_projection.parameters()]
        return [
            {"params": image, "lr": lr_image},
            {"params": list(self.temporal.parameters()), "lr": lr_temporal},
            {"params": [self.context], "lr": lr_prompt},
        ]


def load_dfer_clip(path: str | Path, class_names: list[str], n_ctx: int = 8, temporal_layers: int = 1,
                   max_frames: int = 64) -> DFERCLIP:
    """Build DFER-CLIP on a local copy of CLIP.

    Args:
        path: folder with ``openai/clip-vit-base-patch32`` (config, weights, tokenizer files).
        class_names: canonical emotion names, in class order; each gets its :data:`CLASS_DESCRIPTORS` text.
        n_ctx, temporal_layers, max_frames: as in :class:`DFERCLIP`.
    Returns:
        The model.
    Raises:
        ModelWeightsError: the folder is missing or lacks CLIP's files.
    """
    from transformers import CLIPModel, CLIPTokenizer

    path = Path(path)
    hint = (f"put a local copy of openai/clip-vit-base-patch32 at {path} "
            "(or point params key recognize.clip_path at one)")
    if not (path / "config.json").is_file():
        raise ModelWeightsError(f"CLIP weights not found: {path} has no config.json; {hint}")
    unknown = [name for name in class_names if name not in CLASS_DESCRIPTORS]
    if unknown:
        raise ValueError(f"no descriptor for classes {unknown}; known: {sorted(CLASS_DESCRIPTORS)}")
    try:
        clip = CLIPModel.from_pretrained(path, local_files_only=True)
        tokenizer = CLIPTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as err:
        raise ModelWeightsError(f"cannot load CLIP from {path} ({err}); {hint}") from err
    ids = [tokenizer(CLASS_DESCRIPTORS[name])["input_ids"] for name in class_names]
    return DFERCLIP(clip, ids, n_ctx=n_ctx, temporal_layers=temporal_layers, max_frames=max_frames)


# ----------------------------------------------------------------------------------------------------------
# Registry


def input_kind(name: str) -> str:
    """Returns ``"geometry"`` for models over landmark features, ``"video"`` for models over uint8 clips."""
    _check_name(name)
    return "geometry" if name == "Landmark_Transformer" else "video"


def _check_name(name: str) -> None:
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown recognition model {name!r}; choose one of {', '.join(MODEL_NAMES)}")


def build_model(name: str, n_classes: int, *, width: int = 64, hidden: int = 256, geometry_dim: int | None = None,
                clip_path: str | Path | None = None, class_names: list[str] | None = None,
                max_frames: int = 64) -> nn.Module:
    """Build a recognition model by name.

    Args:
        name: one of :data:`MODEL_NAMES`.
        n_classes: output classes.
        width: CNN base width (64 = the standard networks).
        hidden: temporal head width (also the Landmark_Transformer's).
        geometry_dim: per-frame feature size, needed by Landmark_Transformer.
        clip_path, class_names: a local CLIP copy and the class names, needed by DFER_CLIP.
        max_frames: the most frames a clip may have (transformer heads).
    Returns:
        The untrained model (DFER_CLIP: on pretrained CLIP).
    """
    _check_name(name)
    if name == "Landmark_Transformer":
        if geometry_dim is None:
            raise ValueError("Landmark_Transformer needs geometry_dim")
        return LandmarkTransformer(geometry_dim, n_classes, hidden=hidden, max_frames=max_frames)
    if name == "DFER_CLIP":
        if clip_path is None or class_names is None:
            raise ValueError("DFER_CLIP needs clip_path and class_names")
        if len(class_names) != n_classes:
            raise ValueError(f"DFER_CLIP: {len(class_names)} class names for {n_classes} classes")
        return load_dfer_clip(clip_path, class_names, max_frames=max_frames)
    backbone, head = name.split("_")
    encoder = ResNet18Encoder(width) if backbone == "Res18" else VGG13Encoder(width)
    temporal = (LSTMHead(encoder.out_dim, hidden) if head == "LSTM"
                else TransformerHead(encoder.out_dim, hidden, max_frames=max_frames))
    return VideoClassifier(encoder, temporal, n_classes)


def optimizer_param_groups(model: nn.Module, lr: float,
                           clip_lrs: tuple[float, float, float] = (1e-5, 1e-2, 1e-3)) -> list[dict]:
    """Optimizer groups: DFER-CLIP's (image, temporal, prompt) learning rates ``clip_lrs``, else one group at ``lr``."""
    if isinstance(model, DFERCLIP):
        return model.param_groups(*clip_lrs)
    return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr}]
