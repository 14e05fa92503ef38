"""Qwen2.5-VL backend for the ``prompts`` stage: one face image plus one instruction in, one text out.

The ASI composer (``argen.asi.prompts.VLMComposer``) hands this backend the identity frames and the
instructions it built (retrieved AU knowledge included in ``vlm_rag`` mode); Qwen2.5-VL-7B-Instruct answers
each with a free-text expression description that the composer then verifies against the FACS table.

The weights are never downloaded: they must be a local copy of ``Qwen/Qwen2.5-VL-7B-Instruct`` at the path
``asi.qwen_path`` in ``params.yaml`` names, and every ``from_pretrained`` call is ``local_files_only``.

Two things differ from the model card's recipe, both on purpose:

* The processor is an image-only :class:`~transformers.Qwen2_5_VLProcessor`. In transformers 5 the full
  processor always builds the video processor, which needs torchvision; this pipeline sends still frames
  only, so leaving the video half out drops that dependency (PyPI's torchvision wheels are CUDA builds
  that do not load against the CPU torch wheel this project installs).
* ``top_k`` is switched off at generation time. Qwen's ``generation_config.json`` ships near-greedy
  defaults, and a ``top_k`` left there would override the configured temperature / nucleus sampling.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

#: The checkpoint this backend is written for (named in error messages; never fetched).
QWEN_CHECKPOINT = "Qwen/Qwen2.5-VL-7B-Instruct"

#: File suffixes that hold model weights in a ``save_pretrained`` folder.
WEIGHT_SUFFIXES = (".safetensors", ".bin")


class VLMWeightsError(FileNotFoundError):
    """The local Qwen2.5-VL folder is missing or incomplete; the message says what to put where."""


class _StillImageProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL processor with the tokenizer and image processor only (no video processor).

    transformers 5 derives a processor's parts from its ``__init__`` signature, so leaving
    ``video_processor`` out of it makes ``from_pretrained`` load and check just the two parts still images
    need. The parent's ``__init__`` still hands a third, ``None`` part on, which ``ProcessorMixin`` drops as
    it pairs positional parts with the two attributes. Chat template, image-token expansion and
    ``mm_token_type_ids`` are the parent's.
    """

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(image_processor, tokenizer, chat_template=chat_template, **kwargs)


def _weights_error(path: Path, problem: str) -> VLMWeightsError:
    """The error for an unusable weights folder: ``problem`` plus what belongs there and where it is set."""
    return VLMWeightsError(
        f"Qwen2.5-VL weights not usable at '{path}': {problem}. The qwen2_5_vl backend expects a local copy of "
        f"{QWEN_CHECKPOINT} there (config.json, the model weights, and the processor/tokenizer files); the "
        f"folder is set by `asi.qwen_path` in params.yaml (read by the prompts stage). Nothing is downloaded at "
        f"run time.")


def _check_weights_folder(path: Path) -> None:
    """Raise :class:`VLMWeightsError` unless ``path`` looks like a saved model folder."""
    if not path.is_dir():
        raise _weights_error(path, "the folder does not exist")
    if not (path / "config.json").is_file():
        raise _weights_error(path, "config.json is missing")
    if not any(child.name.endswith(WEIGHT_SUFFIXES) for child in path.iterdir()):
        raise _weights_error(path, "no weight files (*.safetensors or *.bin) were found")


def _resolve_device(device: str) -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; any other value is passed to ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _dtype_for(device: torch.device) -> torch.dtype:
    """bf16 on GPUs that support it, else fp16 on CUDA; float32 on the CPU (half precision is slow there)."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _bgr_to_pil(image: np.ndarray) -> Image.Image:
    """An OpenCV BGR ``uint8`` array (H, W, 3) as an RGB PIL image."""
    return Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


class QwenVLBackend:
    """Qwen2.5-VL-Instruct through transformers, loaded from local files, sampling in seeded batches.

    Args:
        model_path: Folder holding a local copy of Qwen/Qwen2.5-VL-7B-Instruct (``asi.qwen_path``).
        device: ``"auto"`` (CUDA if available, else CPU), or any ``torch.device`` string.
        batch_size: Samples per ``generate`` call; left padding keeps batched decoding correct.
        temperature: Sampling temperature.
        top_p: Nucleus-sampling mass.
        max_new_tokens: Most tokens generated per answer.

    Raises:
        VLMWeightsError: The folder is missing, lacks config.json or weights, or its files cannot be loaded.
    """

    name = "qwen2_5_vl"

    def __init__(self, model_path: str, device: str = "auto", batch_size: int = 4, temperature: float = 0.8,
                 top_p: float = 0.9, max_new_tokens: int = 256) -> None:
        path = Path(model_path)
        _check_weights_folder(path)
        self.device = _resolve_device(device)
        self.batch_size = batch_size
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        try:
            self.processor = _StillImageProcessor.from_pretrained(path, local_files_only=True)
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(path, local_files_only=True,
                                                                       dtype=_dtype_for(self.device))
        except OSError as error:
            raise _weights_error(path, f"loading failed ({error})") from error
        self.model = model.to(self.device).eval()
        # Decoder-only generation appends to the right end of each row, so padding must go on the left.
        self.processor.tokenizer.padding_side = "left"

    def _chat_prompt(self, instruction: str) -> str:
        """The chat-formatted prompt for one image followed by ``instruction``, ready for the assistant."""
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": instruction}]}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def generate(self, images: list[np.ndarray], instructions: list[str], seed: int) -> list[str]:
        """Answer each instruction about its image.

        Samples are processed in batches of ``batch_size``; batch ``i`` is sampled after
        ``torch.manual_seed(seed + i)``, so the same inputs, seed, batch size and device give the same texts.

        Args:
            images: Face images as OpenCV BGR ``uint8`` arrays of shape (H, W, 3).
            instructions: One instruction per image.
            seed: Base sampling seed.

        Returns:
            The generated text for each input, stripped, in input order.

        Raises:
            ValueError: ``images`` and ``instructions`` differ in length.
        """
        if len(images) != len(instructions):
            raise ValueError(f"got {len(images)} images but {len(instructions)} instructions")
        answers: list[str] = []
        for batch_index, start in enumerate(range(0, len(images), self.batch_size)):
            stop = start + self.batch_size
            inputs = self.processor(text=[self._chat_prompt(text) for text in instructions[start:stop]],
                                    images=[_bgr_to_pil(image) for image in images[start:stop]],
                                    padding=True, return_tensors="pt").to(self.device)
            torch.manual_seed(seed + batch_index)
            with torch.inference_mode():
                generated = self.model.generate(**inputs, do_sample=True, temperature=self.temperature,
                                                top_p=self.top_p, top_k=0, max_new_tokens=self.max_new_tokens)
            new_tokens = generated[:, inputs["input_ids"].shape[1]:]
            answers.extend(text.strip() for text in
                           self.processor.batch_decode(new_tokens, skip_special_tokens=True))
        return answers
