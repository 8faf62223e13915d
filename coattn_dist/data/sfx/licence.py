"""Each clip's licence, from the package's own documents.

The Debian copyright file (``usr/share/doc/<package>/copyright``) decides: in the machine-
readable format its ``Files:`` stanzas are globs over the source tree, the last matching one
wins, so supertuxkart's per-file licences (CC0, CC-BY, CC-BY-SA, GPL) come out per clip. Files
inside archives, and packages whose copyright file is free text, get the package's licence from
``PACKAGE_LICENCES`` (read from those free-text files). OpenClonk lists its CC0 sounds in the
sound archive's ``authors.txt``; those are matched by name.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re

from coattn_dist.data.sfx.captions import game_of

# Packages whose copyright file is free text: the licence it states for the game data.
SPDX = {"CC0": "CC0-1.0", "public-domain": "public-domain"}  # one name per licence across packages
PACKAGE_LICENCES = {
    "0ad": "CC-BY-SA-3.0",
    "openclonk": "CC-BY-3.0",
    "megaglest": "CC-BY-SA-3.0",
    "wesnoth": "GPL-2+",
    "widelands": "GPL-2+",
    "lincity-ng": "GPL-2+",  # "dual-licensed under the GPL and CC-BY-SA-2.0"; Debian uses the GPL
}
# Packages that install a source folder under another name: (installed prefix, source folder), so
# a copyright stanza's source-tree glob (Lugaru's ``Data/*``) reaches the installed files.
SOURCE_ROOTS = {"lugaru": ("usr/share/games/lugaru/", "Data/")}


def parse_copyright(text: str) -> list[tuple[list[str], str, str]]:
    """(globs, licence, comment) per ``Files:`` stanza of a machine-readable copyright file, in
    order; empty for a free-text one."""
    if not text.startswith("Format:"):
        return []
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:(.*?)(?=^\S|\Z)", block, re.M | re.S)
        licence = re.search(r"^License: *(\S.*)$", block, re.M)
        comment = re.search(r"^Comment:(.*?)(?=^\S|\Z)", block, re.M | re.S)
        if files and licence:
            stanzas.append(
                (
                    files.group(1).split(),
                    SPDX.get(licence.group(1).strip(), licence.group(1).strip()),
                    " ".join(comment.group(1).split()) if comment else "",
                )
            )
    return stanzas


def glob_matches(glob: str, path: str) -> bool:
    """A source-tree glob against an installed path: any suffix of the path may be the file."""
    if glob == "*":
        return True
    parts = path.split("/")
    return any(fnmatch.fnmatchcase("/".join(parts[i:]), glob) for i in range(len(parts)))


def _cc0_items(authors: str) -> list[str]:
    """Names listed after OpenClonk's "licensed under the CC 0 license" heading."""
    m = re.search(r"CC ?0 license.*?:\s*\n(.*)", authors, re.S | re.I)
    if not m:
        return []
    items = []
    for line in m.group(1).splitlines():
        body = re.split(r"\s-\s", line, maxsplit=1)[-1]
        body = re.sub(r"\([^)]*\)", "", body)
        items += [i.strip() for i in body.split(",") if i.strip() and "http" not in i]
    return items


def _item_patterns(item: str) -> list[str]:
    """``RockHit1-3`` → ``rockhit[1-3]``; ``Fuse/FuseLoop/FuseShort`` → three names; ``Furnace/
    Start`` stays a folder/file pair."""
    parts = [p for p in item.replace("&", "").lower().split("/") if p]
    if len(parts) > 1 and all(p.startswith(parts[0]) for p in parts[1:]):
        names = parts
    else:
        names = ["/".join(parts)]
    return [re.sub(r"(\d)-(\d)", r"[\1-\2]", n) for n in names]


class Licences:
    """Licence lookup for one package, built from the documents collected while reading it.
    ``paths``, the package's audio files, lets a CC0 item that names several files in different
    folders (OpenClonk's ``Click2``) count as ambiguous: those keep the package licence."""

    def __init__(self, package: str, docs: dict[str, str], paths: list[str] = ()):
        self.default = PACKAGE_LICENCES.get(game_of(package), "unknown")
        self.root = SOURCE_ROOTS.get(game_of(package), ("", ""))
        copyright = next((t for p, t in docs.items() if p.endswith(f"doc/{package}/copyright")), "")
        self.stanzas = parse_copyright(copyright)
        patterns = [
            pat
            for p, t in docs.items()
            if p.lower().endswith("authors.txt")
            for item in _cc0_items(t)
            for pat in _item_patterns(item)
        ]
        self.cc0: set[str] = set()
        for pat in patterns:
            hits = [p for p in paths if fnmatch.fnmatchcase(_stem(p), "*/" + pat)]
            if len({posixpath.dirname(h) for h in hits}) == 1:
                self.cc0.update(hits)

    def __call__(self, path: str) -> str:
        installed, source = self.root
        if installed and path.startswith(installed):
            path = source + path[len(installed) :]
        licence = self.default
        for globs, name, _ in self.stanzas:
            if any(glob_matches(g, path) for g in globs):
                licence = name
        return "CC0-1.0" if path in self.cc0 else licence


def _stem(path: str) -> str:
    """``.../Hits.ocg/Rock.ocg/RockHit1.ogg`` → ``.../hits/rock/rockhit1``."""
    return re.sub(r"\.(ogg|wav)$", "", re.sub(r"\.(ocg|ocd)(?=/)", "", path).lower())
