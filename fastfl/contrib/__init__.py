"""Contributed algorithms and compressors, at FedLab 1.3's paths (`fastfl.contrib.algorithm`, ...)."""
