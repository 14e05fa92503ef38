"""The torchrun / accelerate rank set-up (argen.distributed), without a launcher and with two Gloo processes."""

from __future__ import annotations

import os
import socket

import pytest
import torch.multiprocessing as mp

from argen.distributed import Ranks, launched_ranks


def test_plain_run_is_one_rank_and_every_call_a_no_op(monkeypatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    ranks = launched_ranks()
    assert ranks == Ranks(0, 1, 0) and not ranks.distributed and ranks.device == ""
    assert all(ranks.mine(k) for k in range(5))
    ranks.start()
    ranks.barrier()
    assert ranks.finish()  # no process group was started, none is needed


def test_ranks_come_from_the_launchers_environment(monkeypatch) -> None:
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    ranks = launched_ranks()
    assert ranks == Ranks(3, 4, 1) and ranks.distributed
    assert [k for k in range(10) if ranks.mine(k)] == [3, 7]
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert ranks.device == "cuda:1"
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert ranks.device == ""  # Gloo on CPUs, the params' device


def _worker(rank: int, port: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))  # what torchrun sets
    ranks = launched_ranks()
    ranks.start()
    ranks.barrier()
    results.put((rank, ranks.finish()))


def test_two_gloo_ranks_meet_and_only_rank_0_goes_on() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    context = mp.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_worker, args=(rank, port, results)) for rank in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    if any(p.exitcode is None for p in processes):
        for p in processes:
            p.kill()
        pytest.fail("the two ranks did not finish")
    assert sorted(results.get(timeout=5) for _ in range(2)) == [(0, True), (1, False)]
