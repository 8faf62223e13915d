"""Data-parallel training on Ray Train: the same run as a plain one, on N workers.

Each worker trains a replica on every N-th batch and gradients are averaged after each step
(`loops._average_gradients`), so the replicas stay identical; rank 0 saves the checkpoint and
its training log, which the driver reads back. Features are small, so they travel to the workers
inside the train-loop config.
"""

from __future__ import annotations

import json

import fsspec
import torch
from ray.train import RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from coattn_dist.config import Config
from coattn_dist.features import Features
from coattn_dist.runtime import init_ray
from coattn_dist.train.run import train_all


def _worker(config: dict) -> None:
    import ray.train

    torch.set_num_threads(1)
    rank = ray.train.get_context().get_world_rank()
    train_all(
        config["cfg"],
        config["train"],
        config["val"],
        config["cascades"],
        config["out"],
        config["storage_options"],
        chief=rank == 0,
        rerank_train=config["rerank_train"],
        multi_val=config["multi_val"],
    )


def train_distributed(
    cfg: Config,
    train: Features,
    val: Features,
    cascades: list[str],
    out: str,
    storage_options: dict | None,
    num_workers: int,
    storage_path: str | None = None,
    rerank_train: Features | None = None,
    multi_val: Features | None = None,
) -> dict:
    init_ray()
    trainer = TorchTrainer(
        _worker,
        train_loop_config={
            "cfg": cfg,
            "train": train,
            "val": val,
            "cascades": cascades,
            "out": out,
            "storage_options": storage_options,
            "rerank_train": rerank_train,
            "multi_val": multi_val,
        },
        scaling_config=ScalingConfig(
            num_workers=num_workers,
            use_gpu=torch.cuda.is_available(),
            resources_per_worker={"CPU": 1},
        ),
        run_config=RunConfig(name="coattn-train", storage_path=storage_path),
    )
    trainer.fit()
    with fsspec.open(f"{out}/train_log.json", "r", **(storage_options or {})) as f:
        return json.load(f)  # written by rank 0 beside the checkpoint
