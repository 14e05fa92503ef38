"""Reading the project's own model files (safetensors) with every check a damaged file can fail.

A model file can be truncated (an interrupted copy), overwritten with other bytes, or hold a valid header
over garbage values. :func:`load_checked` refuses each before a model runs: the header and the data must
parse (safetensors), the tensor names and shapes must be those of the model that reads them, and every
value must be finite. The error names the file and the stage that makes it, so the user knows what to
re-run.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from argen.errors import InputError


def load_checked(path: Path | str, made_by: str, expected: dict[str, torch.Tensor] | None = None
                 ) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, checked.

    Args:
        path: the file.
        made_by: the stage that writes it (named in the error: ``dvc repro <made_by>`` remakes it).
        expected: the state dict of the model that will read the file; names and shapes must match it.

    Raises:
        InputError: the file is missing or unreadable, its header or data are damaged, a tensor is missing,
            unexpected or of another shape, or a value is not finite.
    """
    path = Path(path)
    remedy = f"re-run the stage that makes it: dvc repro --force {made_by}"
    if not path.is_file():
        raise InputError(f"{path}: missing; {remedy}")
    try:
        tensors = load_file(str(path))
    except Exception as err:  # safetensors raises its own SafetensorError (not an OSError) for a bad header
        raise InputError(f"{path}: not a readable safetensors file ({type(err).__name__}: {err}); {remedy}") from None
    if expected is not None:
        missing = sorted(set(expected) - set(tensors))
        unexpected = sorted(set(tensors) - set(expected))
        if missing or unexpected:
            raise InputError(f"{path}: not the expected model (tensors missing: {missing[:5]}, unexpected: "
                             f"{unexpected[:5]}); {remedy}")
        wrong = [f"{name} {tuple(tensors[name].shape)} (expected {tuple(want.shape)})"
                 for name, want in expected.items() if tensors[name].shape != want.shape]
        if wrong:
            raise InputError(f"{path}: tensors of the wrong shape: {', '.join(wrong[:5])}; {remedy}")
    bad = [name for name, tensor in tensors.items()
           if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    if bad:
        raise InputError(f"{path}: non-finite values (NaN or infinity) in {', '.join(sorted(bad)[:5])}: the file is "
                         f"damaged; {remedy}")
    return tensors
