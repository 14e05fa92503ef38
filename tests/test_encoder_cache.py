"""The shared cache of encoder outputs (MiniLM text embeddings, dlib face descriptors): a hit returns exactly
the bytes the encoder computes, the key changes with everything that changes them, and a broken entry is
computed again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import cv2

from argen.extract.cache import cached_array


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("ARGEN_CACHE", str(tmp_path))
    return tmp_path / "encoders"


def test_cached_array_computes_once_and_recomputes_a_broken_entry(cache: Path) -> None:
    calls = []

    def compute() -> np.ndarray:
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(2, 3)

    first = cached_array("kind", "ab12", compute)
    second = cached_array("kind", "ab12", compute)
    assert len(calls) == 1 and second.tobytes() == first.tobytes() and second.dtype == np.float32
    entry = cache / "kind" / "ab" / "ab12.npy"
    entry.write_bytes(b"not an array")
    assert cached_array("kind", "ab12", compute).tobytes() == first.tobytes() and len(calls) == 2
    assert [p.name for p in entry.parent.iterdir()] == ["ab12.npy"]  # no temporary file left


def test_text_embeddings_from_the_cache_are_the_encoders_bytes(cache: Path, monkeypatch) -> None:
    from argen.asi import retrieval

    texts = ["Expression: fear.", "Identity: short hair; Expression: surprise; brows raised."]
    direct = np.asarray(retrieval.minilm().encode(texts, normalize_embeddings=True, convert_to_numpy=True),
                        np.float32)
    assert retrieval.encode(texts).tobytes() == direct.tobytes()

    def no_model():
        raise AssertionError("the model was loaded for texts already in the cache")

    monkeypatch.setattr(retrieval, "minilm", no_model)
    assert retrieval.encode(texts).tobytes() == direct.tobytes()
    with pytest.raises(AssertionError, match="already in the cache"):  # another list, another batch: a new key
        retrieval.encode(texts[:1])
    with pytest.raises(AssertionError, match="already in the cache"):
        retrieval.encode(texts, batch_size=64)


def test_face_descriptors_from_the_cache_are_dlibs(cache: Path, monkeypatch) -> None:
    from argen.face import FaceAnalyzer
    from argen.policy import state

    image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    points = FaceAnalyzer().analyze(image).landmarks
    direct = state.face_descriptor(image, points)
    assert state.face_descriptors([image], points[None]).tobytes() == direct.tobytes()
    monkeypatch.setattr(state, "face_descriptor", lambda *args: pytest.fail("computed again"))
    assert state.face_descriptors([image], points[None])[0].tobytes() == direct.tobytes()
    with pytest.raises(pytest.fail.Exception):  # other landmarks: another key
        state.face_descriptors([image], points[None] + 1.0)
