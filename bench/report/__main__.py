"""``python -m bench.report``: see :mod:`bench.report.command`."""

from bench.report.command import main

raise SystemExit(main())
