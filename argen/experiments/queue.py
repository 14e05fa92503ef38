"""Printing or queueing ``dvc exp run --queue`` commands, shared by the ablations and the evidence run."""

from __future__ import annotations

import subprocess

import yaml


def yaml_value(value: object) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


def shell_text(command: list[str]) -> str:
    """The command as one line a shell accepts (values with brackets, braces, commas or spaces quoted)."""
    return " ".join(f"'{c}'" if any(ch in c for ch in " [{,*") else c for c in command)


def print_or_queue(commands, run: bool) -> None:
    """Print each ``dvc exp run --queue`` command; with ``run``, also run it (a failure raises)."""
    for command in commands:
        print(shell_text(command))
        if run:
            subprocess.run(command, check=True)
