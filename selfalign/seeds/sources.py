"""Where seed source files come from: the stdlib, a directory, JSONL/Parquet, or a HF dataset.

Every source yields ``SourceFile`` items in a deterministic order. Files on disk
are read in the worker (``data`` is None until then), so a resumed run skips
finished files without reading them. Rows that cannot be read at all are still
yielded, with ``error`` set, so they are counted instead of lost.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import sysconfig
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from selfalign.config import ConfigError
from selfalign.records import stable_id


@dataclass
class SourceFile:
    """One source file: a stable id, a display path, and its bytes (or where to read them)."""

    id: str
    path: str
    data: bytes | None = None
    disk_path: str | None = None
    error: str | None = None

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.disk_path is None:
            return b""
        return Path(self.disk_path).read_bytes()


@dataclass
class Source:
    """A resolved source: a label for records, the items, and their count when known."""

    label: str
    files: Iterator[SourceFile]
    total: int | None


def file_id(source: str, path: str) -> str:
    return stable_id("file", source, path)


def _spread_order(path: str) -> str:
    # Files are visited in a hashed order, not alphabetically, so that a run
    # with --limit draws its seeds from all over the corpus, yet every run
    # visits them in the same order.
    return hashlib.sha256(path.encode("utf-8")).hexdigest()


def excluded(rel_path: str, patterns: Sequence[str]) -> bool:
    """Whether ``rel_path`` (POSIX, relative to the source root) matches an exclude glob."""
    probe = "/" + rel_path
    return any(fnmatch.fnmatchcase(probe, p) or fnmatch.fnmatchcase(rel_path, p) for p in patterns)


def directory_files(root: Path, label: str, excludes: Sequence[str]) -> list[SourceFile]:
    """Every ``.py`` file under ``root`` not matching an exclude, in a fixed hashed order."""
    found = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if excluded(rel, excludes) or not path.is_file():
            continue
        found.append(SourceFile(id=file_id(label, rel), path=rel, disk_path=str(path)))
    found.sort(key=lambda f: _spread_order(f.path))
    return found


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _jsonl_rows(path: Path, label: str) -> Iterator[SourceFile]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            name = f"{path.name}:{number}"
            try:
                row = json.loads(raw)
                content = row["content"]
                if not isinstance(content, str):
                    raise TypeError("content is not a string")
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
                yield SourceFile(id=file_id(label, name), path=name, error=f"unreadable row: {exc}")
                continue
            rel = _row_path(row) or name
            yield SourceFile(
                id=file_id(label, f"{name}:{rel}"), path=rel, data=content.encode("utf-8")
            )


def _row_path(row: dict[str, object]) -> str | None:
    for key in ("path", "max_stars_repo_path", "file_path"):
        value = row.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _parquet_rows(path: Path, label: str) -> Iterator[SourceFile]:
    import pyarrow.parquet as pq

    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            number += 1
            name = f"{path.name}:{number}"
            content = row.get("content")
            if not isinstance(content, str):
                yield SourceFile(
                    id=file_id(label, name), path=name, error="content is not a string"
                )
                continue
            rel = _row_path(row) or name
            yield SourceFile(
                id=file_id(label, f"{name}:{rel}"), path=rel, data=content.encode("utf-8")
            )


def _parquet_total(path: Path) -> int:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path)
    if "content" not in meta.schema_arrow.names:
        raise ConfigError(
            f"{path} has no 'content' column (columns: {', '.join(meta.schema_arrow.names)}); "
            "seeds need one source file per row in 'content'"
        )
    return meta.metadata.num_rows


def _hf_rows(spec: str, label: str) -> Iterator[SourceFile]:
    # Not exercised by tests (no dataset hub here): kept to a thin adapter.
    from datasets import load_dataset

    name, _, config = spec.partition(":")
    stream = load_dataset(name, config or None, split="train", streaming=True)
    for number, row in enumerate(stream, start=1):
        content = row.get("content")
        rel = _row_path(row) or f"{name}:{number}"
        key = f"{number}:{rel}"
        if not isinstance(content, str):
            yield SourceFile(id=file_id(label, key), path=rel, error="content is not a string")
            continue
        yield SourceFile(id=file_id(label, key), path=rel, data=content.encode("utf-8"))


def source_label(spec: str) -> str:
    """The label ``open_source(spec)`` gives its records, without opening the source."""
    if spec == "stdlib" or spec.startswith("hf:"):
        return spec
    return str(Path(spec).expanduser().resolve())


def open_source(spec: str, excludes: Sequence[str]) -> Source:
    """Resolve ``--source``; a source that does not exist fails here, before any work."""
    if spec == "stdlib":
        files = directory_files(stdlib_root(), "stdlib", excludes)
        return Source("stdlib", iter(files), len(files))
    if spec.startswith("hf:"):
        dataset = spec[3:]
        if not dataset:
            raise ConfigError(
                "hf: source needs a dataset name, e.g. hf:bigcode/the-stack:data/python"
            )
        return Source(spec, _hf_rows(dataset, spec), None)
    path = Path(spec).expanduser()
    if not path.exists():
        raise ConfigError(
            f"seed source {spec!r} does not exist; pass 'stdlib', a directory, a .jsonl or "
            ".parquet file, or hf:DATASET[:CONFIG]"
        )
    label = str(path.resolve())
    if path.is_dir():
        files = directory_files(path, label, excludes)
        return Source(label, iter(files), len(files))
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    if suffix == ".jsonl":
        with path.open("rb") as handle:
            total = sum(1 for line in handle if line.strip())
        return Source(label, _jsonl_rows(path, label), total)
    if suffix == ".parquet":
        total = _parquet_total(path)
        return Source(label, _parquet_rows(path, label), total)
    raise ConfigError(
        f"seed source {spec!r} is a file of an unknown kind; use a .jsonl or .parquet file "
        "with a 'content' column, or a directory"
    )
