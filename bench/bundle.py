"""``python -m bench.bundle import reports/<suite>``: published runs into a store (format and command:
:mod:`bench.runs.bundle`)."""

from bench.runs.bundle import main

if __name__ == "__main__":
    raise SystemExit(main())
