"""The run directory: the on-disk contract every stage reads and writes.

Layout (see ARCHITECTURE.md)::

    RUN/config.toml                the resolved configuration of the run
    RUN/<stage>/part-*.jsonl       output shards, one JSON object per line
    RUN/<stage>/stats.json         counters: read, written, dropped by reason, seconds
    RUN/<stage>/_SUCCESS           written last; its presence means the stage is complete
    RUN/rejected/<stage>.jsonl     every dropped record with its reason

Every shard is written whole to a temporary file, flushed to disk and moved into
place with ``os.replace``: a killed stage leaves complete shards or nothing, and
loses at most the batch in flight. Readers still check every line, because files
can be damaged by things other than our writer (a full disk, a copy cut short);
a line that does not parse is dropped and counted as ``corrupt_line``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CORRUPT_LINE = "corrupt_line"
DUPLICATE_ID = "duplicate_id"

_BATCH_SHARD = re.compile(r"^part-b(\d{6})\.jsonl$")
_FINAL_SHARD = re.compile(r"^part-(\d{5})\.jsonl$")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dumps_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"


@dataclass
class CorruptLine:
    """A line of a JSONL file that could not be read back as a JSON object."""

    path: str
    line_number: int
    text: str
    error: str


def read_jsonl(path: Path, corrupt: list[CorruptLine] | None = None) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of one JSONL file.

    A line that is not a JSON object, or a last line without its newline (a write
    cut short), is not yielded; it is appended to ``corrupt`` when given.
    """
    with path.open("rb") as handle:
        data = handle.read()
    lines = data.split(b"\n")
    trailing = lines.pop()  # b"" when the file ends with a newline
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if corrupt is not None:
                corrupt.append(CorruptLine(str(path), number, _preview(raw), str(exc)))
            continue
        if not isinstance(obj, dict):
            if corrupt is not None:
                corrupt.append(CorruptLine(str(path), number, _preview(raw), "not a JSON object"))
            continue
        yield obj
    if trailing.strip() and corrupt is not None:
        corrupt.append(
            CorruptLine(str(path), len(lines) + 1, _preview(trailing), "truncated last line")
        )


def _preview(raw: bytes, limit: int = 2000) -> str:
    return raw[:limit].decode("utf-8", errors="replace")


@dataclass
class Rejection:
    """A record a stage dropped, with the reason; written to ``rejected/<stage>.jsonl``."""

    id: str
    reason: str
    record: dict[str, Any] = field(default_factory=dict)
    detail: str = ""


@dataclass
class StageStats:
    """The counters of one stage, as saved in ``<stage>/stats.json``."""

    stage: str
    read: int = 0
    written: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    runs: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    complete: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    """The resolved options of the sections the stage read, as its last run used them."""

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["dropped"] = dict(sorted(self.dropped.items(), key=lambda kv: (-kv[1], kv[0])))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageStats:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


class StageStore:
    """One stage's directory in a run: shards, stats, success marker and rejections."""

    def __init__(self, run_path: Path, stage: str) -> None:
        self.run_path = run_path
        self.stage = stage
        self.dir = run_path / stage
        self.rejected_path = run_path / "rejected" / f"{stage}.jsonl"
        self.stats_path = self.dir / "stats.json"
        self.success_path = self.dir / "_SUCCESS"

    # -- state ---------------------------------------------------------------

    def exists(self) -> bool:
        return self.dir.is_dir()

    def is_complete(self) -> bool:
        return self.success_path.is_file()

    def completed_at(self) -> int | None:
        """When the stage last completed (``_SUCCESS``'s mtime in ns), or ``None``."""
        try:
            return self.success_path.stat().st_mtime_ns
        except OSError:
            return None

    def shards(self) -> list[Path]:
        """Every output shard, final shards first, then batch shards in commit order."""
        if not self.dir.is_dir():
            return []
        names = sorted(p.name for p in self.dir.iterdir() if p.suffix == ".jsonl")
        final = [n for n in names if _FINAL_SHARD.match(n)]
        batches = [n for n in names if _BATCH_SHARD.match(n)]
        return [self.dir / n for n in final + batches]

    def reset(self) -> None:
        """Delete this stage's output, stats, marker and rejections (for a forced re-run)."""
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.rejected_path.unlink(missing_ok=True)

    def remove_temporaries(self) -> int:
        """Remove temporary files a killed writer left behind; return how many."""
        removed = 0
        for folder in (self.dir, self.rejected_path.parent):
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp"):
                    tmp.unlink(missing_ok=True)
                    removed += 1
        return removed

    # -- reading -------------------------------------------------------------

    def read(self, corrupt: list[CorruptLine] | None = None) -> Iterator[dict[str, Any]]:
        """Yield this stage's records across all shards; each id at most once."""
        seen: set[str] = set()
        for shard in self.shards():
            for record in read_jsonl(shard, corrupt):
                rid = record.get("id")
                if isinstance(rid, str):
                    if rid in seen:
                        continue
                    seen.add(rid)
                yield record

    def read_rejected(self, corrupt: list[CorruptLine] | None = None) -> Iterator[dict[str, Any]]:
        if self.rejected_path.is_file():
            yield from read_jsonl(self.rejected_path, corrupt)

    def load_stats(self) -> StageStats:
        if self.stats_path.is_file():
            try:
                return StageStats.from_dict(json.loads(self.stats_path.read_text("utf-8")))
            except (json.JSONDecodeError, TypeError) as exc:
                logger.warning("ignoring unreadable %s: %s", self.stats_path, exc)
        return StageStats(stage=self.stage)

    # -- writing -------------------------------------------------------------

    def next_batch_index(self) -> int:
        indices = [int(m.group(1)) for p in self.shards() if (m := _BATCH_SHARD.match(p.name))]
        return max(indices, default=-1) + 1

    def commit_batch(self, records: Iterable[dict[str, Any]], index: int) -> Path:
        """Write one batch as its own shard, atomically. Returns the shard's path."""
        path = self.dir / f"part-b{index:06d}.jsonl"
        atomic_write_text(path, "".join(dumps_line(r) for r in records))
        return path

    def append_rejections(self, rejections: Iterable[Rejection]) -> int:
        """Append rejections to ``rejected/<stage>.jsonl`` (flushed to disk); return the count."""
        lines = [
            dumps_line(
                {
                    "id": r.id,
                    "stage": self.stage,
                    "reason": r.reason,
                    "detail": r.detail,
                    "record": r.record,
                }
            )
            for r in rejections
        ]
        if not lines:
            return 0
        self.rejected_path.parent.mkdir(parents=True, exist_ok=True)
        with self.rejected_path.open("a", encoding="utf-8") as handle:
            handle.write("".join(lines))
            handle.flush()
            os.fsync(handle.fileno())
        return len(lines)

    def remove(self, ids: Iterable[str]) -> int:
        """Rewrite the shards without the records of ``ids``; return how many were removed.

        Each shard is rewritten atomically; the stage is no longer complete afterwards
        unless the caller marks it so again.
        """
        drop = set(ids)
        removed = 0
        if not drop:
            return 0
        for shard in self.shards():
            rows = list(read_jsonl(shard))
            keep = [r for r in rows if r.get("id") not in drop]
            if len(keep) != len(rows):
                removed += len(rows) - len(keep)
                atomic_write_text(shard, "".join(dumps_line(r) for r in keep))
        return removed

    def drop(self, rejections: Iterable[Rejection]) -> int:
        """Drop written records with a reason: each ``Rejection.record["id"]`` is removed from
        the shards and the rejection is appended to ``rejected/<stage>.jsonl``.

        Rejections are saved before the shards shrink: a kill in between leaves the
        records in place, and running the same whole-stage step again drops them again.
        """
        items = list(rejections)
        self.append_rejections(items)
        return self.remove(str(r.record.get("id")) for r in items)

    def repair(self) -> list[CorruptLine]:
        """Rewrite shards and the rejections file without their unreadable lines.

        Returns the corrupt lines found, so the caller can count them. Each file is
        rewritten atomically, so a kill during repair leaves it as it was.
        """
        found: list[CorruptLine] = []
        paths = self.shards() + ([self.rejected_path] if self.rejected_path.is_file() else [])
        for path in paths:
            bad: list[CorruptLine] = []
            good = list(read_jsonl(path, bad))
            if bad:
                logger.warning("%s: dropping %d unreadable line(s)", path, len(bad))
                atomic_write_text(path, "".join(dumps_line(r) for r in good))
                found.extend(bad)
        return found

    def compact(self, max_records: int = 10_000) -> None:
        """Merge small batch shards into ``part-NNNNN.jsonl`` shards of up to ``max_records``.

        Crash-safe: merged shards are written before the batch shards are removed,
        and readers skip ids they have already seen, so a kill in between leaves
        duplicates on disk but not in what is read; the next compaction removes them.
        """
        shards = self.shards()
        if not shards or all(_FINAL_SHARD.match(p.name) for p in shards):
            return
        records = list(self.read())
        stale = [p for p in shards]
        chunks = [records[i : i + max_records] for i in range(0, len(records), max_records)]
        for number, chunk in enumerate(chunks or [[]]):
            path = self.dir / f"part-{number:05d}.jsonl"
            atomic_write_text(path, "".join(dumps_line(r) for r in chunk))
        keep = {f"part-{n:05d}.jsonl" for n in range(max(len(chunks), 1))}
        for path in stale:
            if path.name not in keep:
                path.unlink(missing_ok=True)

    def write_stats(self, stats: StageStats) -> None:
        atomic_write_text(self.stats_path, json.dumps(stats.to_dict(), indent=2) + "\n")

    def mark_success(self) -> None:
        atomic_write_text(self.success_path, f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")

    def clear_success(self) -> None:
        self.success_path.unlink(missing_ok=True)


class RunDir:
    """A run directory: the resolved config plus one ``StageStore`` per stage."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def stage(self, name: str) -> StageStore:
        return StageStore(self.path, name)

    @property
    def config_path(self) -> Path:
        return self.path / "config.toml"

    def ensure(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)


def count_reasons(rejected: Iterable[dict[str, Any]]) -> Counter[str]:
    """Count rejections by reason, counting each (id, reason) once."""
    seen: set[tuple[str, str]] = set()
    counts: Counter[str] = Counter()
    for row in rejected:
        key = (str(row.get("id")), str(row.get("reason")))
        if key in seen:
            continue
        seen.add(key)
        counts[key[1]] += 1
    return counts
