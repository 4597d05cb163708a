"""The manifest beside a folder of shards: each shard's sample count and size, so a reader knows
the dataset's length without scanning every tar, and a writer knows which shards are finished.

``anyssl-shards.json``: ``{"format": 1, "total": N, "shards": [{"name": "train-000000.tar",
"count": n, "bytes": b}, ...], "meta": {...}}``; ``meta`` is free (source, modality, image size,
label names ...). ``ShardWriter`` adds ``"shard_size"``, ``"prefix"`` and ``"complete"``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from anyssl.shards.spec import ShardError

__all__ = ["FORMAT", "MANIFEST", "manifest_counts", "read_manifest", "write_manifest"]

MANIFEST = "anyssl-shards.json"
#: The manifest format this version writes and reads.
FORMAT = 1


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest in ``folder``, or None when there is none. ``ShardError`` naming the file
    when it is not a format-1 manifest (it is written atomically, so never half written)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ShardError(f"shard manifest {path} cannot be read: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT \
            or not isinstance(manifest.get("shards"), list):
        raise ShardError(f"shard manifest {path} is not a format-{FORMAT} anyssl shard manifest "
                         "(a dict with 'format' and a 'shards' list); delete it to rescan")
    return manifest


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` into ``folder`` atomically (a temporary file, then ``os.replace``), so
    a reader or an interrupted writer sees the old manifest or the new one, never a mix."""
    path = Path(folder) / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def manifest_counts(shards: list[Path]) -> list[int | None]:
    """Each shard's sample count from the manifest beside it, or None where the manifest does not
    list the shard or lists another file size (the shard was rewritten or cut since)."""
    manifests: dict[Path, dict[str, tuple[int, int]]] = {}
    counts: list[int | None] = []
    for path in shards:
        folder = path.parent
        if folder not in manifests:
            found = read_manifest(folder) or {"shards": []}
            manifests[folder] = {str(s.get("name")): (int(s.get("count", -1)),
                                                      int(s.get("bytes", -1)))
                                 for s in found["shards"] if isinstance(s, dict)}
        count, size = manifests[folder].get(path.name, (-1, -1))
        counts.append(count if count >= 0 and size == path.stat().st_size else None)
    return counts
