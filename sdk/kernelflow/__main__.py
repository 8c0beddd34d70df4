"""``python -m kernelflow`` is the ``kernelflow`` command."""

from kernelflow.cli import main

raise SystemExit(main())
