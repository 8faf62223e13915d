"""A corpus of real recorded sound effects from Debian game-data packages (``coattn prepare --sfx``).

Modules, in pipeline order: ``deb`` (read a .deb as a stream), ``zipstream`` and ``c4group``
(archives inside packages), ``sources`` (a package's files as entries), ``rules`` (real
recording or not), ``vocabulary`` and ``captions`` (path → concept → captions), ``docs``
(hints from package documents), ``licence`` (per-clip licence), ``corpus`` (the builder).
"""

from coattn_dist.data.sfx.corpus import build_corpus

__all__ = ["build_corpus"]
