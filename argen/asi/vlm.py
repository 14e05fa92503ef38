"""Qwen2.5-VL backend for the ``prompts`` stage: one face image plus one instruction in, one text out.

The ASI composer (``argen.asi.prompts.VLMComposer``) hands this backend the identity frames and the
instructions it built (retrieved AU knowledge included in ``vlm_rag`` mode); Qwen2.5-VL-7B-Instruct answers
each with a free-text expression description that the composer then verifies against the FACS table.

The weights are never downloaded: they must be a local copy of ``Qwen/Qwen2.5-VL-7B-Instruct`` at the path
``asi.qwen_path`` in ``params.yaml`` names, and every ``from_pretrained`` call is ``local_files_only``.

Decisions that differ from the model card's recipe, all on purpose:

* **Sampling is fully explicit.** The checkpoint's ``generation_config.json`` ships near-greedy defaults
  (``top_k=1``, ``top_p=0.001``) and ``repetition_penalty=1.05``, none of which the paper uses. The loaded
  generation config is replaced by one holding only the special-token ids, and every ``generate`` call passes
  ``do_sample``, ``temperature``, ``top_p``, ``top_k=0`` (off), ``repetition_penalty`` (``asi.repetition_penalty``,
  default 1.0 = none) and ``max_new_tokens``.
* **Precision** (:func:`choose_dtype`): bf16 on GPUs that support it; float32 on GPUs without bf16 (Qwen2-VL
  models are reported to emit "!!!" or NaN in fp16, so fp16 is never used) and on the CPU.
* **Device** (:func:`resolve_device`): ``device: auto`` on a machine without CUDA refuses to run a 7B model on
  the CPU unless ``asi.allow_cpu`` is true (then it warns). With ``accelerate`` installed the weights load
  straight onto a GPU (``device_map``); without it they are built in host RAM first (~17 GiB peak for 7B),
  and a warning says so.
* **Image size** is capped at ``asi.max_pixels`` pixels per image (28x28 pixels per visual token), passed to
  the image processor on every call: a full-resolution frame would cost ~2.7k tokens.
* **Image-only processor.** In transformers 5 the full processor always builds the video processor, which
  needs torchvision; this pipeline sends still frames only, so :class:`_StillImageProcessor` leaves the video
  half out. That relies on transformers internals (parts derived from ``__init__``'s signature), so the
  transformers range it is tested with is pinned in requirements.txt and checked at load
  (:data:`TESTED_TRANSFORMERS`, a warning outside it).
"""

from __future__ import annotations

import logging
import warnings
from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np
import torch
import transformers
from packaging.version import Version
from PIL import Image
from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

from argen.errors import UserError

log = logging.getLogger(__name__)

#: The checkpoint this backend is written for (named in error messages; never fetched).
QWEN_CHECKPOINT = "Qwen/Qwen2.5-VL-7B-Instruct"

#: File suffixes that hold model weights in a ``save_pretrained`` folder.
WEIGHT_SUFFIXES = (".safetensors", ".bin")

#: transformers versions the image-only processor work-around is tested with: [low, high).
TESTED_TRANSFORMERS = ("5.23", "5.24")


class VLMWeightsError(FileNotFoundError):
    """The local Qwen2.5-VL folder is missing or incomplete; the message says what to put where."""


class VLMDeviceError(UserError):
    """The configured device cannot run the VLM sensibly (``device: auto`` without CUDA and no ``allow_cpu``)."""


class _StillImageProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL processor with the tokenizer and image processor only (no video processor).

    transformers 5 derives a processor's parts from its ``__init__`` signature, so leaving
    ``video_processor`` out of it makes ``from_pretrained`` load and check just the two parts still images
    need. The parent's ``__init__`` still hands a third, ``None`` part on, which ``ProcessorMixin`` drops as
    it pairs positional parts with the two attributes. Chat template, image-token expansion and
    ``mm_token_type_ids`` are the parent's. Tested with transformers :data:`TESTED_TRANSFORMERS`.
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


def _loud(message: str) -> None:
    """A warning both the log and Python's warnings machinery show."""
    log.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def check_transformers_version(version: str = transformers.__version__) -> bool:
    """True inside :data:`TESTED_TRANSFORMERS`; outside it, warn that the processor work-around is untested."""
    low, high = (Version(v) for v in TESTED_TRANSFORMERS)
    if low <= Version(version) < high:
        return True
    _loud(f"transformers {version} is outside the range the Qwen2.5-VL image-only processor is tested with "
          f"(>={low},<{high}); it relies on transformers internals, so check the prompts stage's output.")
    return False


def resolve_device(device: str, cuda_available: bool, allow_cpu: bool) -> torch.device:
    """The device to run on.

    ``"auto"`` picks ``cuda`` when ``cuda_available``; without CUDA it raises :class:`VLMDeviceError` unless
    ``allow_cpu`` (then it warns: a 7B model on the CPU takes minutes per prompt). Any other value is passed
    to ``torch.device`` as given (an explicit ``"cpu"`` is a deliberate choice and is not refused).
    """
    if device != "auto":
        return torch.device(device)
    if cuda_available:
        return torch.device("cuda")
    message = ("asi.device is 'auto' but this torch sees no CUDA GPU, so the qwen2_5_vl backend would run "
               f"{QWEN_CHECKPOINT} on the CPU (minutes per prompt, ~30 GiB RAM in float32).")
    if not allow_cpu:
        raise VLMDeviceError(f"{message} Install a CUDA build of torch, set `asi.device: cpu` or "
                             "`asi.allow_cpu: true` in params.yaml to run it anyway, or use `asi.backend: template`.")
    _loud(f"{message} Running on the CPU because asi.allow_cpu is true.")
    return torch.device("cpu")


def choose_dtype(device_type: str, bf16_supported: bool) -> torch.dtype:
    """bf16 on a CUDA device that supports it; float32 otherwise (never fp16, see the module docstring).

    Takes the device's capability as arguments so the decision is testable without a GPU.
    """
    if device_type == "cuda":
        if bf16_supported:
            return torch.bfloat16
        _loud("This GPU has no bf16; Qwen2-VL models are reported to emit '!!!' or NaN in fp16, so the VLM runs "
              "in float32 (about twice the memory: ~30 GiB for the 7B model).")
    return torch.float32


def load_kwargs(device: torch.device, dtype: torch.dtype, have_accelerate: bool) -> dict:
    """``from_pretrained`` arguments: the dtype always; ``device_map`` onto a GPU when accelerate is there."""
    kwargs: dict = {"dtype": dtype}
    if device.type != "cpu":
        if have_accelerate:
            kwargs["device_map"] = {"": str(device)}
        else:
            _loud("accelerate is not installed, so the VLM is built in host RAM before moving to the GPU "
                  "(~17 GiB peak for the 7B model in bf16); `pip install accelerate` loads it straight onto the GPU.")
    return kwargs


def _bgr_to_pil(image: np.ndarray) -> Image.Image:
    """An OpenCV BGR ``uint8`` array (H, W, 3) as an RGB PIL image."""
    return Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


class QwenVLBackend:
    """Qwen2.5-VL-Instruct through transformers, loaded from local files, sampling in seeded batches.

    Args:
        model_path: Folder holding a local copy of Qwen/Qwen2.5-VL-7B-Instruct (``asi.qwen_path``).
        device: ``"auto"`` (CUDA if available, see :func:`resolve_device`), or any ``torch.device`` string.
        batch_size: Samples per ``generate`` call; left padding keeps batched decoding correct.
        temperature: Sampling temperature.
        top_p: Nucleus-sampling mass.
        max_new_tokens: Most tokens generated per answer.
        repetition_penalty: Passed to every ``generate`` call; 1.0 (the default) is none, as in the paper.
        max_pixels: Most pixels per image after the processor's resize (28x28 pixels per visual token).
        allow_cpu: Let ``device="auto"`` fall back to the CPU (with a warning) instead of refusing.

    Raises:
        VLMWeightsError: The folder is missing, lacks config.json or weights, or its files cannot be loaded.
        VLMDeviceError: ``device="auto"`` without CUDA and ``allow_cpu`` false.
    """

    name = "qwen2_5_vl"

    def __init__(self, model_path: str, device: str = "auto", batch_size: int = 4, temperature: float = 0.8,
                 top_p: float = 0.9, max_new_tokens: int = 256, repetition_penalty: float = 1.0,
                 max_pixels: int = 200704, allow_cpu: bool = False) -> None:
        path = Path(model_path)
        _check_weights_folder(path)
        self.device = resolve_device(device, torch.cuda.is_available(), allow_cpu)
        self.batch_size = batch_size
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        self.repetition_penalty = repetition_penalty
        self.max_pixels = max_pixels
        check_transformers_version()
        cuda = self.device.type == "cuda"
        dtype = choose_dtype(self.device.type, cuda and torch.cuda.is_bf16_supported())
        kwargs = load_kwargs(self.device, dtype, find_spec("accelerate") is not None)
        try:
            self.processor = _StillImageProcessor.from_pretrained(path, local_files_only=True)
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(path, local_files_only=True, **kwargs)
        except OSError as error:
            raise _weights_error(path, f"loading failed ({error})") from error
        if "device_map" not in kwargs:
            model = model.to(self.device)
        self.model = model.eval()
        # Keep only the special-token ids of the checkpoint's generation config: its sampling defaults
        # (repetition_penalty 1.05, top_k 1, ...) must not reach generate().
        loaded = self.model.generation_config
        self.model.generation_config = GenerationConfig(bos_token_id=loaded.bos_token_id,
                                                        eos_token_id=loaded.eos_token_id,
                                                        pad_token_id=loaded.pad_token_id)
        # Decoder-only generation appends to the right end of each row, so padding must go on the left.
        self.processor.tokenizer.padding_side = "left"

    @classmethod
    def from_params(cls, cfg) -> "QwenVLBackend":
        """The backend as ``params.yaml``'s ``asi:`` section (an :class:`argen.params.ASIParams`) configures it."""
        return cls(cfg.qwen_path, device=cfg.device, batch_size=cfg.batch_size, temperature=cfg.temperature,
                   top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens, repetition_penalty=cfg.repetition_penalty,
                   max_pixels=cfg.max_pixels, allow_cpu=cfg.allow_cpu)

    def sampling_kwargs(self) -> dict:
        """Every sampling parameter ``generate`` gets, explicitly (nothing left to the checkpoint's defaults)."""
        return {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p, "top_k": 0,
                "repetition_penalty": self.repetition_penalty, "max_new_tokens": self.max_new_tokens}

    def _chat_prompt(self, instruction: str) -> str:
        """The chat-formatted prompt for one image followed by ``instruction``, ready for the assistant."""
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": instruction}]}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def encode(self, images: list[np.ndarray], instructions: list[str]):
        """The processor's batch for ``images`` and ``instructions``, each image capped at ``max_pixels``."""
        shortest = min(int(self.processor.image_processor.size["shortest_edge"]), self.max_pixels)
        return self.processor(text=[self._chat_prompt(text) for text in instructions],
                              images=[_bgr_to_pil(image) for image in images],
                              size={"shortest_edge": shortest, "longest_edge": self.max_pixels},
                              padding=True, return_tensors="pt").to(self.device)

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
            inputs = self.encode(images[start:stop], instructions[start:stop])
            torch.manual_seed(seed + batch_index)
            with torch.inference_mode():
                generated = self.model.generate(**inputs, **self.sampling_kwargs())
            new_tokens = generated[:, inputs["input_ids"].shape[1]:]
            answers.extend(text.strip() for text in
                           self.processor.batch_decode(new_tokens, skip_special_tokens=True))
        return answers
