"""A collection remembers which embedding space its vectors are in.

Vectors from two checkpoints do not compare, even at the same width: a collection indexed with
one and searched, or topped up, with a retrained one would rank by noise without a word of
warning. The index job records the checkpoint's fingerprint (``RetrievalModel.fingerprint``) as
a collection property; indexing or searching with another is refused unless the user asks to
re-embed everything (``coattn index --reindex``).
"""

from __future__ import annotations

FINGERPRINT_PROPERTY = "coattn.checkpoint"


class CheckpointMismatch(ValueError):
    """The collection's vectors come from another checkpoint than the one in use."""


def check_fingerprint(properties: dict[str, str], fingerprint: str, collection: str) -> None:
    recorded = properties.get(FINGERPRINT_PROPERTY)
    if recorded is not None and recorded != fingerprint:
        raise CheckpointMismatch(
            f"collection {collection!r} holds vectors of checkpoint {recorded}, not of this one "
            f"({fingerprint}): they do not compare. Search it with the checkpoint it was indexed "
            "with, or re-embed it (coattn index --reindex)"
        )


def record_fingerprint(store, fingerprint: str) -> None:
    """Check `fingerprint` against the collection (a `ClipStore`) and record it there."""
    check_fingerprint(store.properties(), fingerprint, store.collection)
    store.set_properties(**{FINGERPRINT_PROPERTY: fingerprint})
