"""Inference backends, one module each; heavy imports stay inside those modules."""
