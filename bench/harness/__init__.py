"""The harness: one run from a RunSpec to its record. A task's code, by name (``tasks``): image classification
(``images``) and the character-level transformer (``text``). Image sets on the device (``data``), networks (``models``),
initializers (``init``), optimizers, schedules and losses (``optim``), regularizers (``regularize``), per-layer
probes (``probes``), the one epoch loop (``loop``) and the measured paths of ``python -m bench.perf``
(``throughput``). It knows no store: a record goes out, nothing comes back."""
