"""Training a checkpoint: the loops (`loops`), the run that chains them with early stopping and
saving (`run`), and the same run data-parallel on Ray Train (`distributed`)."""
