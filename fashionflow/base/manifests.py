"""JSON-lines manifests that many processes write at once, one record per item, and their merge.

Each process appends whole lines to a part file of its own (safe on shared storage: no two
processes ever write the same file); the main process merges the parts into the manifest when
all are done, a later record of an item replacing an earlier one. A run that was killed leaves
its parts, and the next merge takes them in; a line cut short by the kill is passed over (that
item is looked at again anyway).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .files import write_lines


class Manifest:
    """`path`: one record per item, keyed by `key`; this process appends to `part`; the parts are
    the files `parts_glob` finds in `path`'s folder (this process's among them)."""

    def __init__(self, path: str | os.PathLike, key: str, part: str | os.PathLike, parts_glob: str):
        self.path = Path(path)
        self.key = key
        self.part = Path(part)
        self.parts_glob = parts_glob

    def record(self, entry: dict) -> None:
        """Append one record to this process's part, in one write."""
        self.part.parent.mkdir(parents=True, exist_ok=True)
        with open(self.part, "a", encoding="utf-8") as file:
            file.write(json.dumps(entry, ensure_ascii=False) + "\n")
            file.flush()

    def records(self) -> dict[str, dict]:
        """The merged manifest as it stands, by item (parts not yet merged are not in it)."""
        return {entry[self.key]: entry for entry in read_jsonl(self.path) if self.key in entry}

    def merge(self) -> dict[str, dict]:
        """Fold every part into the manifest, whole or not at all; the records by item."""
        records = self.records()
        parts = sorted(self.path.parent.glob(self.parts_glob), key=lambda p: (p.stat().st_mtime, p.name))
        for part in parts:
            for entry in read_jsonl(part):
                if self.key in entry:
                    records[entry[self.key]] = entry
        if parts or not self.path.exists():
            lines = [json.dumps(records[name], ensure_ascii=False) for name in sorted(records)]
            write_lines(self.path, lines)
            for part in parts:
                part.unlink(missing_ok=True)
            if self.part.parent != self.path.parent:
                try:
                    self.part.parent.rmdir()
                except OSError:
                    pass  # another part appeared meanwhile (or was never there): the next merge takes it
        return records


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The records of a JSON-lines file; lines cut short (a killed writer) are passed over."""
    path = Path(path)
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries
