"""Summaries, comparisons, tables and plots of results files (never the runner: ``results.py`` and ``artifacts.py``)."""
