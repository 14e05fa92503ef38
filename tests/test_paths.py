"""argen/paths.py and dvc.yaml name the same files: each path there is a stage's dependency or output here,
and each data or model path dvc.yaml passes between stages is one of argen.paths (or inside one)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import yaml

from argen import paths

ROOT = Path(__file__).resolve().parents[1]


def dvc_paths() -> set[str]:
    """Every dependency and output path of dvc.yaml's stages (templates and code left out)."""
    found = set()
    for stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].values():
        body = stage.get("do", stage)
        for kind in ("deps", "outs", "metrics"):
            for entry in body.get(kind, []):
                name = entry if isinstance(entry, str) else next(iter(entry))
                if not name.startswith(("argen/", "stages/", "${")):
                    found.add(name)
    return found


def named_paths() -> dict[str, PurePosixPath]:
    return {name: PurePosixPath(value.as_posix()) for name, value in vars(paths).items()
            if name.isupper() and isinstance(value, Path)}


def inside(path: PurePosixPath, folder: PurePosixPath) -> bool:
    return path == folder or folder in path.parents


def test_every_path_of_the_module_is_a_dependency_or_output_in_dvc_yaml() -> None:
    pipeline = [PurePosixPath(p.split("${")[0].rstrip("/")) for p in dvc_paths()]
    cache = PurePosixPath(paths.CACHE.as_posix())
    missing = [name for name, path in named_paths().items() if not inside(path, cache) and path != PurePosixPath("reports")
               and not any(inside(p, path) or inside(path, p) for p in pipeline)]
    assert not missing, f"argen/paths.py names files no dvc.yaml stage reads or writes: {missing}"


def test_every_data_and_model_path_of_dvc_yaml_is_in_the_module() -> None:
    named = list(named_paths().values())
    unnamed = sorted(p for p in dvc_paths() if p.startswith(("data/", "models/"))
                     and not any(inside(PurePosixPath(p.split("${")[0].rstrip("/")), n) for n in named))
    assert not unnamed, f"dvc.yaml passes paths argen/paths.py does not name: {unnamed}"


def test_no_stage_script_spells_a_pipeline_path() -> None:
    """Stage scripts take their paths from argen.paths (one place to change a file's name)."""
    spelled = [f"{script.name}: {line.strip()}" for script in sorted((ROOT / "stages").glob("*.py"))
               for line in script.read_text().splitlines()
               if ('"data/' in line or '"models/' in line) and not line.lstrip().startswith(("#", "``", "*"))]
    assert not spelled, spelled


def test_report_dir() -> None:
    assert paths.report_dir("policy") == Path("reports/policy")
