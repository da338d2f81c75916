"""ovfer.engine.seed: seeding, RNG capture/restore, history-free epoch shuffles."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from _engine_toys import ToyDataset, ToyMethod

from ovfer.engine import TrainConfig, Trainer, load_checkpoint, make_loader, save_checkpoint
from ovfer.engine.seed import capture_rng_state, epoch_seed, make_generator, restore_rng_state, seed_everything


def _draw(gen: torch.Generator) -> tuple:
    return (random.random(), float(np.random.rand()), float(np.random.normal()), torch.rand(3).tolist(),
            torch.randint(0, 1000, (4,), generator=gen).tolist())


def test_capture_restore_through_a_weights_only_checkpoint(tmp_path: Path) -> None:
    seed_everything(5)
    gen = make_generator(5)
    random.gauss(0, 1)  # leaves a cached gaussian in python's state
    state = capture_rng_state({"loader": gen})
    first = _draw(gen)
    save_checkpoint(tmp_path / "rng.pt", {"model": {}, "rng": [state]})
    restored = load_checkpoint(tmp_path / "rng.pt")["rng"][0]
    _draw(gen)
    restore_rng_state(restored, {"loader": gen})
    assert _draw(gen) == first


def test_seeds_are_reproducible_and_distinct() -> None:
    seed_everything(3)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(3)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a
    assert epoch_seed(0, 1) == epoch_seed(0, 1)
    assert len({epoch_seed(0, e, r) for e in range(5) for r in range(2)}) == 10
    assert torch.equal(torch.rand(4, generator=make_generator(1, 2)), torch.rand(4, generator=make_generator(1, 2)))


def test_epoch_order_does_not_depend_on_history(tmp_path: Path) -> None:
    """The shuffle of epoch e comes from (seed, e) only, whatever ran before."""
    def order(burn: int) -> list[str]:
        ds = ToyDataset(n=12)
        loader = make_loader(ds, batch_size=12, train=True, seed=0)
        trainer = Trainer(ToyMethod(), loader, TrainConfig(device="cpu", progress=False), tmp_path)
        for _ in range(burn):
            list(loader)  # consume the loader generator
        torch.rand(burn + 1)
        trainer._set_epoch(2)
        assert ds.epochs_seen == [2]
        return next(iter(loader))["id"]

    assert order(0) == order(3)
