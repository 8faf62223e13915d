"""What a row may hold: the limits of the collection's text fields, checked where rows are made
(the index job's reader) without importing the Milvus client."""

ID_MAX_BYTES = 64
URI_MAX_BYTES = 2048
LABEL_MAX_BYTES = 256
VERSION_MAX_BYTES = 128  # an ETag, an mtime: what says the file behind a URI changed


def check_clip_id(clip_id: str) -> str:
    """Ids end up inside filter expressions (ours and pymilvus' iterator, which does not escape),
    so quotes, backslashes and control characters are refused up front."""
    if (
        not isinstance(clip_id, str)
        or not clip_id
        or len(clip_id.encode()) > ID_MAX_BYTES
        or '"' in clip_id
        or "\\" in clip_id
        or not clip_id.isprintable()
    ):
        raise ValueError(
            f"invalid clip_id {clip_id!r}: need 1-{ID_MAX_BYTES} bytes of printable "
            'text without " or \\'
        )
    return clip_id
