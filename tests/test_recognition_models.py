"""Recognition models: every one can fit a tiny set, the temporal heads see frame order, DFER-CLIP's text path
matches CLIP's own, its freezing and optimizer groups, and the registry's errors."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig

from argen.errors import UserError
from argen.recognize.models import (
    DFERCLIP, MODEL_NAMES, LandmarkTransformer, LSTMHead, ModelWeightsError, TransformerHead, build_model,
    input_kind, load_dfer_clip, optimizer_param_groups,
)

VIDEO_MODELS = ("Res18_LSTM", "Res18_Transformer", "VGG13_LSTM", "VGG13_Transformer")
COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255))
BOS, EOS = 62, 63  # the tiny CLIP's special ids (the real vocabulary's are 49406, 49407)


def _evaluate(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(train loss, train accuracy) in eval mode."""
    model.eval()
    with torch.no_grad():
        logits = model(inputs)
    return (torch.nn.functional.cross_entropy(logits, labels).item(),
            (logits.argmax(1) == labels).float().mean().item())


def _fit(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, steps: int, lr: float = 3e-3,
         loss_below: float = 0.3, check_every: int = 10):
    """Full-batch Adam on (inputs, labels) for at most ``steps`` steps; returns (train loss, train accuracy) in
    eval mode. Every ``check_every`` steps it stops early once the fit is what the test asks (accuracy 1, loss
    below ``loss_below``): a model that cannot fit still runs every step and fails."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(1, steps + 1):
        model.train()
        loss = torch.nn.functional.cross_entropy(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % check_every == 0 or step == steps:
            loss_value, accuracy = _evaluate(model, inputs, labels)
            if accuracy == 1.0 and loss_value < loss_below:
                break
    return loss_value, accuracy


def _moving_square_clips(n_per_class: int, frames: int = 4, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise clips with a square that moves right (class 0) or down (class 1) and changes colour across the frames
    (so that the frames differ after global pooling too)."""
    g = torch.Generator().manual_seed(1)
    clips = torch.randint(0, 128, (2 * n_per_class, frames, 3, size, size), generator=g, dtype=torch.uint8)
    labels = torch.arange(2).repeat_interleave(n_per_class)
    for i, label in enumerate(labels):
        for t in range(frames):
            y, x = (4, 4 + 6 * t) if label == 0 else (4 + 6 * t, 4)
            clips[i, t, :, y: y + 8, x: x + 8] = torch.tensor(COLOURS[t % len(COLOURS)], dtype=torch.uint8)[:, None, None]
    return clips, labels


@pytest.mark.parametrize("name", VIDEO_MODELS)
def test_video_models_overfit_a_tiny_set(name: str) -> None:
    torch.manual_seed(0)
    clips, labels = _moving_square_clips(2)
    model = build_model(name, 2, width=4, hidden=16)
    assert input_kind(name) == "video"
    assert model(clips).shape == (4, 2)
    loss, accuracy = _fit(model, clips, labels, steps=60, lr=1e-2)
    assert accuracy == 1.0 and loss < 0.3


@pytest.mark.parametrize("name", ["Res18_LSTM", "Res18_Transformer"])
def test_temporal_heads_separate_the_same_frames_in_opposite_order(name: str) -> None:
    """Class 1 is class 0's clips played backwards (a square moving left, not right): the same frames, so only
    an order-aware model tells them apart."""
    torch.manual_seed(0)
    clips, labels = _moving_square_clips(2)
    rightwards = clips[labels == 0]
    clips = torch.cat([rightwards, rightwards.flip(1)])
    # The [CLS] read-out of the transformer starts order-blind (near-uniform attention over content + small
    # positional embeddings sums to the same for both orders), hence the gentler and longer schedule.
    loss, accuracy = _fit(build_model(name, 2, width=4, hidden=32), clips, labels, steps=150, lr=3e-3)
    assert accuracy == 1.0 and loss < 0.3


@pytest.mark.parametrize("head", [LSTMHead(6, 8, layers=2), TransformerHead(6, 8, layers=2, heads=2)])
def test_temporal_heads_depend_on_every_frame(head: torch.nn.Module) -> None:
    """Changing any one frame, first or last, changes the head's output (no first-state or one-frame read-out)."""
    torch.manual_seed(0)
    head.eval()
    x = torch.randn(2, 5, 6)
    with torch.no_grad():
        base = head(x)
        assert base.shape == (2, 8)
        for t in range(5):
            changed = x.clone()
            changed[:, t] += 1.0
            assert not torch.allclose(head(changed), base, atol=1e-5), f"frame {t} ignored"


def test_landmark_transformer_overfits_and_ignores_masked_frames() -> None:
    torch.manual_seed(0)
    features = torch.randn(6, 5, 10)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    model = build_model("Landmark_Transformer", 3, hidden=32, geometry_dim=10)
    assert input_kind("Landmark_Transformer") == "geometry" and isinstance(model, LandmarkTransformer)
    loss, accuracy = _fit(model, features, labels, steps=60, lr=3e-3, loss_below=0.2)
    assert accuracy == 1.0 and loss < 0.2

    mask = torch.ones(6, 5, dtype=torch.bool)
    mask[:, 3:] = False  # the last two frames lack landmarks
    garbage = features.clone()
    garbage[:, 3:] = 100.0 * torch.randn(6, 2, 10)
    with torch.no_grad():
        masked = model(features, mask)
        torch.testing.assert_close(model(garbage, mask), masked)  # masked frames have no say
        assert not torch.allclose(model(garbage), masked)  # ... which they would without the mask
        valid_changed = features.clone()
        valid_changed[:, 0] += 1.0
        assert not torch.allclose(model(valid_changed, mask), masked)


# ----------------------------------------------------------------------------------------------------------
# DFER-CLIP on a tiny random CLIP


def _tiny_clip() -> CLIPModel:
    torch.manual_seed(0)
    text = CLIPTextConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=37, max_position_embeddings=32, bos_token_id=BOS, eos_token_id=EOS,
                          pad_token_id=1)
    vision = CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=37)
    config = CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16)
    assert config.text_config.eos_token_id == EOS  # CLIP's own pooling (the reference below) looks for this id
    return CLIPModel(config).eval()


#: 7 classes, descriptors of different lengths (BOS ... EOS).
CLASS_IDS = [[BOS, *range(2 + c, 2 + c + 1 + c % 4), EOS] for c in range(7)]
N_CTX = 3


@pytest.fixture()
def dfer_clip() -> DFERCLIP:
    return DFERCLIP(_tiny_clip(), CLASS_IDS, n_ctx=N_CTX)


def test_dfer_clip_text_features_match_clips_own_text_path(dfer_clip: DFERCLIP) -> None:
    """With the context vectors set to the embeddings of real tokens, the prompt is an ordinary token sequence:
    CLIP's ``get_text_features`` (causal mask, EOS pooling, projection) must give the same features."""
    ctx_ids = [20, 21, 22]
    clip = dfer_clip.clip
    with torch.no_grad():
        dfer_clip.context.copy_(clip.text_model.embeddings.token_embedding(torch.tensor(ctx_ids)))
        length = max(len(ids) for ids in CLASS_IDS) + N_CTX
        full = torch.tensor([[BOS, *ctx_ids, *ids[1:]] + [EOS] * (length - len(ids) - N_CTX) for ids in CLASS_IDS])
        expected = clip.get_text_features(input_ids=full).pooler_output
        torch.testing.assert_close(dfer_clip.text_features(), expected)


def test_dfer_clip_text_features_see_the_context_but_not_the_padding(dfer_clip: DFERCLIP) -> None:
    with torch.no_grad():
        base = dfer_clip.text_features()
        assert base.shape == (7, 16)
        dfer_clip.token_ids[0, len(CLASS_IDS[0]) + N_CTX:] = 5  # class 0 is the shortest: all after EOS is padding
        torch.testing.assert_close(dfer_clip.text_features(), base)
        # a random change: one constant added to every dimension would be removed by the LayerNorms
        dfer_clip.context.add_(0.1 * torch.randn(dfer_clip.context.shape, generator=torch.Generator().manual_seed(0)))
        assert not torch.allclose(dfer_clip.text_features(), base)


def test_dfer_clip_forward_backward_freezing_and_param_groups(dfer_clip: DFERCLIP) -> None:
    torch.manual_seed(0)
    dfer_clip.train()
    clips = torch.randint(0, 256, (2, 4, 3, 32, 32), dtype=torch.uint8)
    logits = dfer_clip(clips)
    assert logits.shape == (2, 7)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 4])).backward()
    clip = dfer_clip.clip
    assert dfer_clip.context.grad is not None and dfer_clip.context.grad.abs().sum() > 0
    for module in (dfer_clip.temporal, clip.vision_model, clip.visual_projection):
        assert all(p.grad is not None for p in module.parameters())
    for module in (clip.text_model, clip.text_projection):
        assert all(p.grad is None and not p.requires_grad for p in module.parameters())
    assert clip.logit_scale.grad is None and not clip.logit_scale.requires_grad

    groups = optimizer_param_groups(dfer_clip, lr=0.1)
    assert [g["lr"] for g in groups] == [1e-5, 1e-2, 1e-3]
    assert groups[2]["params"] == [dfer_clip.context]
    grouped = [id(p) for g in groups for p in g["params"]]
    trainable = [id(p) for p in dfer_clip.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(trainable)  # every trainable parameter in exactly one group
    torch.optim.AdamW(groups).step()


def test_dfer_clip_rejects_a_descriptor_longer_than_clips_context() -> None:
    with pytest.raises(ValueError, match="class 1"):
        DFERCLIP(_tiny_clip(), [[BOS, 5, EOS], [BOS, *[5] * 28, EOS]], n_ctx=8)


# ----------------------------------------------------------------------------------------------------------
# Registry


def test_registry_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="Res18_LSTM.*Landmark_Transformer"):
        build_model("nope", 7)
    with pytest.raises(ValueError, match="nope"):
        input_kind("nope")
    assert set(VIDEO_MODELS) < set(MODEL_NAMES)
    missing = tmp_path / "no_clip_here"
    with pytest.raises(ModelWeightsError, match="no_clip_here") as err:
        load_dfer_clip(missing, ["happy", "sad"])
    assert isinstance(err.value, UserError) and "clip-vit-base-patch32" in str(err.value)
    with pytest.raises(ModelWeightsError, match="no_clip_here"):
        build_model("DFER_CLIP", 2, clip_path=missing, class_names=["happy", "sad"])


def test_optimizer_param_groups_for_a_plain_model() -> None:
    model = build_model("Res18_LSTM", 3, width=4, hidden=8)
    groups = optimizer_param_groups(model, lr=0.05)
    assert len(groups) == 1 and groups[0]["lr"] == 0.05
    assert len(groups[0]["params"]) == len(list(model.parameters()))
