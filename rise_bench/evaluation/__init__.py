"""Evaluation: run configs, the loop over samples x sources x metrics, results, artifacts, shards, provenance.

``runner.evaluate`` is a CLI-facing job: only the CLI imports it. The rest of the
package is what other layers read (``results.py``, ``artifacts.py``).
"""
