"""The bulk index job as the pipeline it is: read -> decode -> embed -> write.

One module per stage (`reader`, `decode`, `embed`, `writer`) and `runner`, which wires them into
one streaming Ray Data graph. Every row carries ``kind`` and ``message`` (empty while it is
healthy): a stage that fails a clip fills them in and later stages pass the row through, so a
bad file ends up in the failures table instead of stopping or hanging the job.
"""
