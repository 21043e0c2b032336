"""Toy stages for the Ray executor's flow tests: plain tasks, a sandbox-pool stage, a failure.

The workers import nothing from ``tests/``: the test registers this module to be
pickled by value, so its functions travel with the stage.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from selfalign.sandbox.config import SandboxConfig
from selfalign.stage import BatchResult, Section, Stage, StageContext, StageInput
from selfalign.store import Rejection


@dataclass
class ToyConfig:
    """Options of the toy stages."""

    n: int = field(default=23, metadata={"help": "How many numbers."})
    batch_size: int = field(default=2, metadata={"help": "Numbers per batch."})
    sleep_s: float = field(default=0.0, metadata={"help": "Seconds each batch takes."})
    fail_on: int = field(default=-1, metadata={"help": "Raise on the batch holding this number."})


def _read(ctx: StageContext) -> StageInput:
    n = ctx.config("toy").n
    items = [{"id": f"i{i:03d}", "v": i} for i in range(n)]
    return StageInput(items=items, item_id=lambda r: r["id"])


def _processor(ctx: StageContext) -> Any:
    cfg: ToyConfig = ctx.config("toy")
    built_in = os.getpid()

    def process(batch: list[dict[str, Any]]) -> BatchResult:
        if any(item["v"] == cfg.fail_on for item in batch):
            raise ValueError(f"the toy stage fails on {cfg.fail_on} on purpose")
        time.sleep(cfg.sleep_s)
        result = BatchResult(metrics={"batches": 1.0})
        for item in batch:
            if item["v"] % 5 == 0:
                result.rejections.append(Rejection(id=item["id"], reason="multiple_of_5"))
            else:
                result.outputs.append(
                    {"id": f"sq{item['v']}", "parent_id": item["id"], "sq": item["v"] ** 2}
                )
        # Where it ran, for the test to see the work spread; not part of the output.
        result.metrics[f"pid_{built_in}"] = 1.0
        return result

    return process


TOY = Section("toy", ToyConfig)

SQUARES = Stage(
    name="squares",
    command="squares",
    summary="square numbers, dropping multiples of five",
    section=TOY,
    inputs=(),
    record=None,
    read=_read,
    processor=_processor,
)
"""A stage with no model and no sandbox: its batches run as Ray tasks."""

POOLED = Stage(
    name="pooled",
    command="pooled",
    summary="the same on sandbox-pool workers (one per node)",
    section=TOY,
    uses=(Section("sandbox", SandboxConfig),),
    inputs=(),
    record=None,
    read=_read,
    processor=_processor,
)
"""Reads a ``SandboxConfig``: its batches run on one actor per node (the pool stays closed)."""

ON_DRIVER = Stage(
    name="driver_squares",
    command="driver-squares",
    summary="the same, on the driver",
    section=TOY,
    inputs=(),
    record=None,
    read=_read,
    processor=_processor,
    distributed=False,
)

TOY_PIPELINE = [SQUARES, POOLED, ON_DRIVER]
