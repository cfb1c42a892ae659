"""Reliability: faults read from disk, lost work and bad inputs each give a clear error (issue 11)."""
