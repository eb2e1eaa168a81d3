"""Training: the train step and the loop around it (``trainer``), progress
lines (``progress``), ``model.summary()`` (``summary``) and the per-layer
profile (``profile``)."""
