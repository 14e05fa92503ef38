"""requirements.lock pins the whole environment `make install` builds, and stays within requirements.txt."""

from __future__ import annotations

import importlib.metadata
import re

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT

#: torch's CUDA-only dependencies: installed beside the CUDA wheels elsewhere, never on the CPU machine the
#: lock is made on, so never pinned (pinning them would break the CPU install).
CUDA_ONLY = re.compile(r"^(nvidia-(?!ml-py).*|triton|cuda-.*)$")


def locked() -> dict[str, str]:
    """Name -> pinned version of every line of requirements.lock."""
    pins = {}
    for number, line in enumerate((ROOT / "requirements.lock").read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version and not re.search(r"[;@ <>~!]", version), f"requirements.lock:{number}: not a pin: {line}"
        assert canonicalize_name(name) not in pins, f"requirements.lock:{number}: {name} pinned twice"
        pins[canonicalize_name(name)] = version
    return pins


def installed() -> dict[str, str]:
    """Name -> version of every distribution installed in this environment, the project itself left out."""
    versions = {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    versions.pop("argen", None)
    return versions


def test_lock_pins_every_installed_distribution() -> None:
    pins, versions = locked(), installed()
    unpinned = sorted(name for name in versions if name not in pins and not CUDA_ONLY.match(name))
    assert not unpinned, f"installed but not in requirements.lock (run `make lock`): {unpinned}"
    # The public version: the local CPU wheel of torch is 2.13.0+cpu, pinned as 2.13.0 (which == accepts).
    moved = {name: (pins[name], v) for name, v in versions.items()
             if name in pins and Version(v).public != Version(pins[name]).public}
    assert not moved, f"installed versions differ from the lock (run `make install` or `make lock`): {moved}"
    missing = sorted(name for name in pins if name not in versions)
    assert not missing, f"pinned but not installed (run `make install`): {missing}"
    assert not any(CUDA_ONLY.match(name) for name in pins), "a CUDA-only package is pinned: the CPU install breaks"


def test_lock_satisfies_requirements_txt() -> None:
    pins = locked()
    for number, line in enumerate((ROOT / "requirements.txt").read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"requirements.txt:{number}: {requirement.name} is not in requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.txt:{number}: requirements.lock pins {requirement.name}=={pins[name]}, outside {line}")
    assert pins["torch"] == "2.13.0", "torch stays at 2.13.0 (the local CPU wheel here, CUDA elsewhere)"


def test_make_install_uses_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet --no-deps -r requirements.lock" in makefile
    assert "$(STAMP): requirements.lock" in makefile
