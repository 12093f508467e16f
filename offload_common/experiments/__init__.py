"""Adaptive-offloading experiments shared by the ApproxBit and How2Compress streams: the
harness that runs nodes over an emulated link (adaptive.py) and the scoring of a run (analysis.py)."""
