"""Runs as data: the executors that train specs side by side (``executors``, ``cluster`` for Ray), the SQLite store
(``store``), published runs as files (``bundle``) and the one reader of a store (``results``)."""
