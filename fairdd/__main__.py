"""``python -m fairdd ...``: the ``fairdd`` command (:mod:`fairdd.cli`)."""

import sys

from fairdd.cli import main

sys.exit(main())
