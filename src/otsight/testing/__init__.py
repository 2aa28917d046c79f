"""Test helpers: deterministic synthetic captures with known ground truth."""
