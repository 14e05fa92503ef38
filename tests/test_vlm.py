"""The Qwen2.5-VL backend end to end on a tiny randomly initialised Qwen2.5-VL saved to a temporary folder.

The folder is laid out like the Hub checkpoint (config.json, generation_config.json, safetensors weights,
tokenizer files, chat template, preprocessor_config.json) but holds a ~100k-parameter model, a byte-level
tokenizer with Qwen's special tokens, and an image processor that makes a 56x56 face four merged tokens.
Nothing touches the hub: offline mode is forced for the whole module.
"""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pandas as pd
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (PreTrainedTokenizerFast, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration,
                          Qwen2VLImageProcessorPil)

import json
import warnings

import transformers.generation.utils as generation_utils

from argen.asi import vlm
from argen.asi.vlm import (QwenVLBackend, VLMDeviceError, VLMWeightsError, check_transformers_version, choose_dtype,
                           load_kwargs, resolve_device)
from tests.conftest import demo_landmarks

#: Qwen2.5-VL's special tokens, in the order they get ids after the 256 byte-level symbols.
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>"]

#: Qwen's chat template, cut down to what the backend sends: text and image parts in user turns.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

INSTRUCTIONS = ["Describe how this face would look when sad.",
                "Fear: which action units move?",
                "Write one sentence about disgust on this face, naming the brows, the nose and the mouth."]


@pytest.fixture(scope="module", autouse=True)
def offline_hub():
    """Force Hugging Face offline mode (the constant is read at import time, so patch it as well)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Run the tiny model on one thread: its matmuls are so small that, on a busy two-core machine, waiting
    for a second thread costs far more than it saves (3.5 s against 0.05 s per call measured here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE over the 256 byte symbols (no merges) plus Qwen2.5-VL's special tokens: 263 ids."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    backend = Tokenizer(models.BPE(vocab={symbol: i for i, symbol in enumerate(alphabet)}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(SPECIAL_TOKENS)
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   chat_template=CHAT_TEMPLATE)


def tiny_config(tokenizer: PreTrainedTokenizerFast) -> Qwen2_5_VLConfig:
    """transformers' own test-sized Qwen2.5-VL, with special-token ids taken from ``tokenizer``."""
    ids = dict(zip(SPECIAL_TOKENS, tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS)))
    text_config = {
        "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512,
        # head_dim 8 -> 4 rotary frequencies, split over (time, height, width).
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 1, 1]},
        "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    vision_config = {
        "depth": 2, "hidden_size": 32, "intermediate_size": 32, "num_heads": 4, "out_hidden_size": 32,
        "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
        # A window of 2x2 merged patches, so the first block really attends in windows; the second is full.
        "window_size": 56, "fullatt_block_indexes": [1],
    }
    return Qwen2_5_VLConfig(text_config=text_config, vision_config=vision_config,
                            image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                            vision_start_token_id=ids["<|vision_start|>"],
                            vision_end_token_id=ids["<|vision_end|>"])


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like a local Qwen/Qwen2.5-VL-7B-Instruct copy, holding a tiny random model."""
    folder = tmp_path_factory.mktemp("qwen2_5_vl_tiny")
    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(tiny_config(tokenizer))
    # Near-greedy sampling defaults, as Qwen ships them: the backend must override them.
    model.generation_config.update(do_sample=True, temperature=0.1, top_p=0.001, top_k=1, repetition_penalty=1.05)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    # One 28x28 merged token per 4 patches: a 56x56 image -> 4 tokens, a 56x84 one -> 6.
    Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=56 * 112).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def backend(qwen_dir: Path) -> QwenVLBackend:
    """The real backend on the tiny model; batches of 2 so 3 inputs need two padded batches."""
    return QwenVLBackend(str(qwen_dir), device="cpu", batch_size=2, max_new_tokens=12)


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    """Three random BGR uint8 images, one of them wider (a different number of image tokens)."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=shape, dtype=np.uint8) for shape in [(56, 56, 3), (56, 84, 3), (56, 56, 3)]]


def test_backend_loads_on_cpu_in_float32(backend: QwenVLBackend) -> None:
    assert backend.name == "qwen2_5_vl"
    assert backend.device == torch.device("cpu")
    assert backend.model.dtype == torch.float32
    assert backend.processor.tokenizer.padding_side == "left"


def test_generate_returns_one_text_per_input_reproducibly(backend: QwenVLBackend, faces: list[np.ndarray]) -> None:
    first = backend.generate(faces, INSTRUCTIONS, seed=3)
    again = backend.generate(faces, INSTRUCTIONS, seed=3)
    assert len(first) == 3
    assert all(isinstance(text, str) for text in first)
    assert any(first)
    # Only the new tokens are decoded: no prompt text comes back.
    assert not any(instruction in text for instruction, text in zip(INSTRUCTIONS, first))
    assert first == again


def test_generate_samples_despite_greedy_checkpoint_defaults(backend: QwenVLBackend,
                                                             faces: list[np.ndarray]) -> None:
    assert backend.generate(faces, INSTRUCTIONS, seed=3) != backend.generate(faces, INSTRUCTIONS, seed=4)


def test_generate_keeps_input_order_across_batches(backend: QwenVLBackend, faces: list[np.ndarray]) -> None:
    """The last input sits alone in batch 1, so generating it alone with seed + 1 gives the same text."""
    together = backend.generate(faces, INSTRUCTIONS, seed=5)
    assert backend.generate(faces[2:], INSTRUCTIONS[2:], seed=6) == together[2:]


def test_generate_rejects_mismatched_lengths(backend: QwenVLBackend, faces: list[np.ndarray]) -> None:
    with pytest.raises(ValueError, match="3 images but 2 instructions"):
        backend.generate(faces, INSTRUCTIONS[:2], seed=0)


def test_missing_folder_names_path_and_param(tmp_path: Path) -> None:
    missing = tmp_path / "Qwen2.5-VL-7B-Instruct"
    with pytest.raises(VLMWeightsError) as error:
        QwenVLBackend(str(missing))
    message = str(error.value)
    assert str(missing) in message
    assert "asi.qwen_path" in message
    assert "Qwen/Qwen2.5-VL-7B-Instruct" in message
    assert isinstance(error.value, FileNotFoundError)


def test_folder_without_processor_files_is_incomplete(qwen_dir: Path, tmp_path: Path) -> None:
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((qwen_dir / name).read_bytes())
    with pytest.raises(VLMWeightsError, match="loading failed") as error:
        QwenVLBackend(str(tmp_path), device="cpu")
    assert "asi.qwen_path" in str(error.value)


def test_folder_without_weights_is_incomplete(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(VLMWeightsError, match="no weight files"):
        QwenVLBackend(str(tmp_path))


def test_tiny_vlm_gibberish_is_caught_and_handled(backend: QwenVLBackend, faces: list[np.ndarray]) -> None:
    """The real backend through the prompts logic: random weights write gibberish, verification rejects it,
    it is composed again up to max_tries, then replaced by the emotion's prototype."""
    from argen.asi.facs import load_facs
    from argen.asi.prompts import PromptRequest, VLMComposer, generate_prompts

    kb = pd.DataFrame({"entry_id": ["fear-00"], "emotion": ["fear"], "aus": [[1, 2, 4, 5, 20, 26]],
                       "intensities": [[0.6] * 6], "description": ["inner brows raised clearly (AU01), ..."],
                       "source": ["literature"], "kind": ["prototype"], "support": [0], "support_fraction": [0.0]})
    requests = [PromptRequest(f"id{i}", "fear", face, demo_landmarks(face.shape[0]), seed=i, retrieved_ids=["fear-00"],
                              retrieved=[{1: 0.6, 5: 0.6}], retrieved_descriptions=["inner brows raised (AU01)"])
                for i, face in enumerate(faces[:2])]
    out = generate_prompts(requests, VLMComposer(backend, seed=0), kb, load_facs(), "regenerate", max_tries=2)
    assert (~out.first_format_ok).all() and (out.tries == 2).all()
    assert (out.action == "fallback_prototype").all()
    assert out.prompt.str.contains("Expression: fear").all() and not out.prompt.str.contains("AU").any()
    assert out.raw_first.str.len().gt(0).all(), "the model's own text is kept for inspection"


# --- Loading decisions (pure functions: testable without a GPU) -------------------------------------------------


@pytest.mark.parametrize(("device_type", "bf16", "expected"), [
    ("cuda", True, torch.bfloat16),
    ("cuda", False, torch.float32),   # fp16 gives "!!!"/NaN with Qwen2-VL: never chosen
    ("cpu", False, torch.float32),
    ("cpu", True, torch.float32),
])
def test_dtype_decision_never_picks_fp16(device_type: str, bf16: bool, expected: torch.dtype) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert choose_dtype(device_type, bf16) == expected
    warned = any("fp16" in str(w.message) for w in caught)
    assert warned is (device_type == "cuda" and not bf16)


def test_device_auto_without_cuda_refuses_unless_allowed() -> None:
    assert resolve_device("auto", cuda_available=True, allow_cpu=False) == torch.device("cuda")
    with pytest.raises(VLMDeviceError, match="asi.allow_cpu"):
        resolve_device("auto", cuda_available=False, allow_cpu=False)
    with pytest.warns(RuntimeWarning, match="on the CPU"):
        assert resolve_device("auto", cuda_available=False, allow_cpu=True) == torch.device("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_device("cpu", cuda_available=False, allow_cpu=False) == torch.device("cpu")


def test_backend_refuses_auto_on_cpu_only_torch(qwen_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(VLMDeviceError, match="no CUDA GPU"):
        QwenVLBackend(str(qwen_dir))
    with pytest.warns(RuntimeWarning, match="allow_cpu is true"):
        allowed = QwenVLBackend(str(qwen_dir), allow_cpu=True)
    assert allowed.device == torch.device("cpu")


def test_load_kwargs_put_weights_straight_on_the_gpu() -> None:
    cuda = torch.device("cuda:0")
    assert load_kwargs(cuda, torch.bfloat16, have_accelerate=True) == {"dtype": torch.bfloat16,
                                                                       "device_map": {"": "cuda:0"}}
    with pytest.warns(RuntimeWarning, match="host RAM"):
        assert load_kwargs(cuda, torch.float32, have_accelerate=False) == {"dtype": torch.float32}
    assert load_kwargs(torch.device("cpu"), torch.float32, have_accelerate=True) == {"dtype": torch.float32}


def test_loading_honours_the_dtype_decision(qwen_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict] = []
    original = Qwen2_5_VLForConditionalGeneration.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        seen.append(kwargs)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Qwen2_5_VLForConditionalGeneration, "from_pretrained", classmethod(spy))
    monkeypatch.setattr(vlm, "choose_dtype", lambda device_type, bf16: torch.bfloat16)
    loaded = QwenVLBackend(str(qwen_dir), device="cpu")
    assert seen[-1]["dtype"] == torch.bfloat16 and seen[-1]["local_files_only"] is True
    assert loaded.model.dtype == torch.bfloat16
    assert {p.device for p in loaded.model.parameters()} == {torch.device("cpu")}


def test_transformers_range_is_checked() -> None:
    assert check_transformers_version()  # the installed version is the tested one
    with pytest.warns(RuntimeWarning, match="outside the range"):
        assert not check_transformers_version("6.0.0")


# --- Sampling parameters and image size ---------------------------------------------------------------------------


def test_generate_gets_every_sampling_parameter_explicitly(backend: QwenVLBackend, faces: list[np.ndarray],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    original = backend.model.generate

    def spy(**kwargs):
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(backend.model, "generate", spy)
    backend.generate(faces[:1], INSTRUCTIONS[:1], seed=0)
    kwargs = calls[0]
    assert kwargs["do_sample"] is True
    assert kwargs["temperature"] == 0.8 and kwargs["top_p"] == 0.9 and kwargs["top_k"] == 0
    assert kwargs["repetition_penalty"] == 1.0 and kwargs["max_new_tokens"] == 12


class Recorder:
    """Stands in for a logits processor class and records each construction."""

    def __init__(self, real, made: list[dict]) -> None:
        self.real, self.made = real, made

    def __call__(self, *args, **kwargs):
        self.made.append(args[0] if args else kwargs.get("penalty", kwargs.get("top_k")))
        return self.real(*args, **kwargs)


def test_checkpoint_repetition_penalty_does_not_leak(qwen_dir: Path, backend: QwenVLBackend, faces: list[np.ndarray],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    saved = json.loads((qwen_dir / "generation_config.json").read_text())
    assert saved["repetition_penalty"] == 1.05 and saved["top_k"] == 1, "the folder carries Qwen's defaults"
    assert backend.model.generation_config.repetition_penalty in (None, 1.0)
    made: list[dict] = []
    monkeypatch.setattr(generation_utils, "RepetitionPenaltyLogitsProcessor",
                        Recorder(generation_utils.RepetitionPenaltyLogitsProcessor, made))
    monkeypatch.setattr(generation_utils, "TopKLogitsWarper", Recorder(generation_utils.TopKLogitsWarper, made))
    backend.generate(faces[:1], INSTRUCTIONS[:1], seed=0)
    assert made == [], "no repetition penalty and no top-k filter reach generation"
    monkeypatch.setattr(backend, "repetition_penalty", 1.2)
    backend.generate(faces[:1], INSTRUCTIONS[:1], seed=0)
    assert made == [1.2], "a configured penalty is what generation uses"


def test_max_pixels_caps_image_tokens(backend: QwenVLBackend, faces: list[np.ndarray],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert backend.max_pixels == 200704
    wide = backend.encode(faces[1:2], INSTRUCTIONS[:1])
    assert wide["image_grid_thw"].tolist() == [[1, 4, 6]]
    frame = np.zeros((1080, 1920, 3), np.uint8)  # a full-resolution frame: ~2.6k merged tokens uncapped
    patches = int(backend.encode([frame], INSTRUCTIONS[:1])["image_grid_thw"].prod())
    assert patches * 14 * 14 <= 200704 and patches > 4 * 200
    monkeypatch.setattr(backend, "max_pixels", 56 * 56)
    capped = backend.encode(faces[1:2], INSTRUCTIONS[:1])["image_grid_thw"]
    assert capped.tolist() == [[1, 2, 4]] and int(capped.prod()) * 14 * 14 <= 56 * 56


def test_from_params_passes_every_asi_setting(qwen_dir: Path) -> None:
    from argen.params import ASIParams
    cfg = ASIParams(qwen_path=str(qwen_dir), device="cpu", batch_size=3, temperature=0.5, top_p=0.7,
                    max_new_tokens=9, repetition_penalty=1.1, max_pixels=56 * 56, allow_cpu=True)
    built = QwenVLBackend.from_params(cfg)
    assert (built.batch_size, built.temperature, built.top_p, built.max_new_tokens) == (3, 0.5, 0.7, 9)
    assert (built.repetition_penalty, built.max_pixels, built.device) == (1.1, 56 * 56, torch.device("cpu"))
    assert ASIParams().repetition_penalty == 1.0 and ASIParams().max_pixels == 200704 and not ASIParams().allow_cpu
