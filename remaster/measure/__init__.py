"""Measuring: benchmarks of speed, and evaluation of photos and films against their true colors."""
