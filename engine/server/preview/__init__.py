"""Previews of a job's settings before (or while) it runs, and their route.

- ``frames``: the fast preview. The frames at one moment through the stages a run
  builds, with a classical baseline beside them; loaded models stay between previews.
- ``sample_run``: the slow preview. A whole run on a sample of a few seconds.
- ``routes``: ``POST /api/jobs/{id}/preview``, which picks one of the two.
"""
