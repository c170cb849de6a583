"""FFmpeg's own filters as stages of the pipeline, in three steps.

- ``specs``: the names ``--sr/--pre/--post/--vfi`` take (``lanczos``, ``nlmeans:s=3``,
  ``minterpolate``...), parsed into ``FilterSpec``; no PyAV needed.
- ``graph``: ``FilterGraph``, a one-input PyAV filter graph on float RGB frames, and
  ``check_spec``, which builds one at the run's size so bad options fail before decoding.
- ``stages``: the pipeline stages on those graphs (sequence filters, the ``blend``
  interpolator, the ``minterpolate`` retimer) and ``classical_stages``, a plan's set.
"""
