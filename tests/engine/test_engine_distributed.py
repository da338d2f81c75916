"""ovfer.engine.distributed: single-process no-ops, unpadded eval shards, 2-rank gloo DDP."""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from _engine_toys import ToyDataset, ddp_worker
from torch.utils.data import RandomSampler, SequentialSampler

from ovfer.engine import distributed as D


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_single_process_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert D.init_distributed() is False
    assert (D.rank(), D.world_size(), D.is_main()) == (0, 1, True)
    D.barrier()
    a = np.arange(5.0)
    assert np.array_equal(D.gather_numpy(a), a)
    t = torch.arange(3)
    assert torch.equal(D.all_gather_tensors(t), t) and torch.equal(D.all_reduce_mean(t.float()), t.float())
    assert isinstance(D.wrap_for_training(torch.nn.Linear(2, 2), torch.device("cpu")), D.TrainingStepModule)


def test_make_loader_single_process() -> None:
    train = D.make_loader(ToyDataset(n=10), batch_size=4, train=True, seed=0)
    test = D.make_loader(ToyDataset(n=10), batch_size=4, train=False)
    assert isinstance(train.sampler, RandomSampler) and isinstance(test.sampler, SequentialSampler)
    assert train.generator is not None and [len(b["id"]) for b in test] == [4, 4, 2]


def test_shard_sampler_covers_each_item_once() -> None:
    shards = [list(D.ShardSampler(10, num_replicas=3, rank_=r)) for r in range(3)]
    assert shards == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [len(D.ShardSampler(2, 4, r)) for r in range(4)] == [1, 1, 0, 0]


@pytest.mark.slow
def test_two_rank_gloo_ddp(tmp_path: Path) -> None:
    mp.spawn(ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert r0["n_batches"] == r1["n_batches"] == 2  # 16 clips, 2 ranks, batch 4
    assert r0["history"] == r1["history"] and len(r0["history"]) == 2  # all-reduced losses
    for k, v in r0["weights"].items():
        assert torch.equal(v, r1["weights"][k]), k
    expected = [0.0, 1.0, 2.0, 100.0, 101.0, 102.0, 103.0, 104.0]  # ranks hold 3 and 5 items
    assert r0["gathered"] == r1["gathered"] == expected
    assert r0["nan_skipped"] == r1["nan_skipped"] == 1
    for k, v in r0["nan_weights"].items():
        assert torch.equal(v, r1["nan_weights"][k]), k
    assert (tmp_path / "last.pt").exists() and not (tmp_path / "nonfinite.pt").exists()
    rows = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2 * 2 + 2  # rank 0 only: a row per step (log_every=1) and per epoch
