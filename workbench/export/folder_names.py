"""Label names as folder names. Label names are data and may hold any character:
:func:`safe_folder_name` makes one that cannot leave its parent or break a file system, and
:func:`label_folders` one per class, distinct and sorting in class order."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["label_folders", "safe_folder_name"]

_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                     *(f"LPT{i}" for i in range(1, 10))}
_MAX_NAME_BYTES = 200


def safe_folder_name(label: str) -> str:
    """A folder name for ``label`` that cannot leave its parent or break a file system.

    Path separators, control characters (NUL included) and characters Windows forbids become
    ``_``; leading dots are dropped (so ``..`` and hidden names are impossible); reserved
    device names get a trailing ``_``; the result is at most 200 UTF-8 bytes. The name is
    NFC-normalised so the same label always maps to the same folder.
    """
    name = unicodedata.normalize("NFC", str(label))
    name = _UNSAFE.sub("_", name).strip().lstrip(".").rstrip(". ")
    if not name:
        name = "_"
    if name.split(".")[0].upper() in _WINDOWS_RESERVED:
        name += "_"
    encoded = name.encode("utf-8")[:_MAX_NAME_BYTES]
    return encoded.decode("utf-8", errors="ignore") or "_"


def label_folders(labels: list[str]) -> dict[str, str]:
    """Folder per label (``labels`` in class order), distinct even on case-insensitive file
    systems, and sorting in class order (torchvision numbers sorted folder names)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for lab in labels:
        base = safe_folder_name(lab)
        name, n = base, 1
        while name.casefold() in taken:  # case-insensitive file systems (macOS, Windows)
            n += 1
            name = f"{base}_{n}"
        taken.add(name.casefold())
        out[lab] = name
    names = [out[lab] for lab in labels]
    if names != sorted(names):
        width = len(str(len(labels) - 1))
        out = {lab: f"{i:0{width}d}-{out[lab]}".encode()[:_MAX_NAME_BYTES]
               .decode("utf-8", errors="ignore") for i, lab in enumerate(labels)}
    return out
