"""What a package's own documents say about its sounds, as extra words for naming a clip.

Consulted only when a path names nothing (``captions.name_clip``): 0ad's sound-group XML files
give cryptic files their group's name (``attack/fire/c_11.ogg`` is in ``crackling_fire.xml``),
and Debian copyright comments give a recording's source title (supertuxkart's ``gp_end.ogg``:
"soundbible.com/989-10-Second-Applause").
"""

from __future__ import annotations

import posixpath
import re

from coattn_dist.data.sfx.licence import glob_matches, parse_copyright

DOC_NAMES = re.compile(r"(^|/)(copyright|authors\.txt|credits|readme[^/]*)$|/audio/.*\.xml$", re.I)
MAX_DOC_BYTES = 1 << 20


def is_doc(path: str) -> bool:
    return bool(DOC_NAMES.search(path))


def _sound_groups(docs: dict[str, str]) -> dict[str, str]:
    """audio path → the names of the sound groups (XML files) that play it."""
    names: dict[str, str] = {}
    for path, text in docs.items():
        if not path.endswith(".xml") or "<SoundGroup" not in text:
            continue
        folder = re.search(r"<Path>\s*([^<]*?)\s*</Path>", text)
        group = posixpath.splitext(posixpath.basename(path))[0]
        for sound in re.findall(r"<Sound>\s*([^<]*?)\s*</Sound>", text):
            key = posixpath.join(folder.group(1) if folder else posixpath.dirname(path), sound)
            names[key] = f"{names.get(key, '')} {group}".strip()
    return names


def _source_titles(comment: str) -> str:
    """The title words of the source pages a copyright comment links to."""
    titles = re.findall(r"soundbible\.com/\d+-([A-Za-z0-9-]+)\.html", comment)
    titles += re.findall(r"pdsounds\.org[:\d]*/(?:sounds|effects)/([a-z0-9_-]+)", comment)
    titles += re.findall(r'"([^"]{3,60})" by', comment)
    return " ".join(re.sub(r"[-_]+", " ", t) for t in titles)


class DocHints:
    def __init__(self, package: str, docs: dict[str, str]):
        self.groups = _sound_groups(docs)
        copyright = next((t for p, t in docs.items() if p.endswith(f"doc/{package}/copyright")), "")
        self.stanzas = [
            (globs, _source_titles(comment))
            for globs, _, comment in parse_copyright(copyright)
            if comment
        ]

    def __call__(self, path: str, data_path: str) -> str:
        words = [self.groups.get(data_path, "")]
        for globs, titles in self.stanzas:
            if titles and globs != ["*"] and any(glob_matches(g, path) for g in globs):
                words.append(titles)
        return " ".join(w for w in words if w)
