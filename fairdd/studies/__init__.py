"""Study-level code of the chapters: sweeps that produce tidy rows, and their tables and figures.

One module per chapter (``fairdd.studies.embedding`` for seed 000); the methods themselves
live in the package proper (``fairdd.distill``, ``fairdd.debias``, ...).
"""
