"""Domains: a folder whose first-level subfolders are instruments (a translator's domains).

``SRC/violin/**/*.wav``, ``SRC/piano/**/*.wav``, ...: every audio file below a subfolder is
labelled with that subfolder's name (``instrument_str``), so ``prepare --format domains``
gives a cache whose instrument ids are the domains in sorted order. Only chosen explicitly
(never auto-detected), since a plain folder's subfolders often mean nothing.
``prepare --domains NAME=FOLDER ...`` builds such a folder of links from any set of folders.
"""

from __future__ import annotations

import os
from pathlib import Path

from waveloom.audio.io import AUDIO_EXTENSIONS
from waveloom.data.sources import SourceItem
from waveloom.data.sources import folder as plain
from waveloom.errors import DataError


def list_items(src: Path) -> list[SourceItem]:
    """Each subfolder's plain-folder items (a subfolder may be a link, as ``--domains``
    makes), named ``<domain>/<path>`` and labelled with the domain."""
    src = Path(src)
    loose = [p.name for p in sorted(src.iterdir()) if p.is_file() and not p.name.startswith(".")
             and p.suffix.lower() in AUDIO_EXTENSIONS]
    if loose:
        raise DataError(f"{src}: {loose[0]!r} is not inside a domain subfolder; put every "
                        "file in SRC/<domain>/ (one subfolder per domain)")
    items = []
    for sub in sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for item in plain.list_items(sub.resolve()):
            item.name = f"{sub.name}/{item.name}"
            item.instrument_str = sub.name
            items.append(item)
    if len({item.instrument_str for item in items}) < 2:
        raise DataError(f"{src}: a translator needs at least 2 domain subfolders with audio")
    return items


def link_domains(pairs: list[str], root: Path) -> Path:
    """``NAME=FOLDER`` pairs -> ``root/NAME`` symbolic links to each folder (replacing links
    there already): the domains layout over folders that live anywhere."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for pair in pairs:
        name, sep, target = pair.partition("=")
        name = name.strip()
        if not sep or not name or "/" in name or name.startswith("."):
            raise DataError(f"--domains {pair!r}: write NAME=FOLDER (a plain name, e.g. "
                            "violin=recordings/violin)")
        folder = Path(target).expanduser().resolve()
        if not folder.is_dir():
            raise DataError(f"--domains {pair}: {target} is not a folder")
        link = root / name
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            raise DataError(f"--domains {pair}: {link} exists and is not a link; choose "
                            "another name")
        os.symlink(folder, link, target_is_directory=True)
    return root
