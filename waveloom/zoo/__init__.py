"""The model zoo: what every checkpoint is, and what was measured of it.

:mod:`.records` keeps the measurements (one JSON file per checkpoint, written by the benchmark
that measured them, never typed by hand); :mod:`.card` reads a checkpoint's metadata and its
records into a :class:`~.card.Card`; :mod:`.render` turns cards into the ``waveloom models``
listing, one card's text, and ``docs/models.md``.
"""
