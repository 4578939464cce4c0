"""A custom upstream for tests, loaded by ``--upstream slow_upstream:SlowWavLM``: WavLM, but slow.

It exercises the ``module:attr`` route and gives a kill -9 test time to strike mid-extraction. Each batch
sleeps ``SLOW_UPSTREAM_SECONDS`` (default 0.1): a test that must see a run stop early rather than finish
slows it further without changing the upstream (or the bytes it writes).
"""

from __future__ import annotations

import os
import time

from superb.extract.upstreams.ssl import WavLM


class SlowWavLM(WavLM):
    def hidden_states(self, wavs, lengths):
        time.sleep(float(os.environ.get("SLOW_UPSTREAM_SECONDS", "0.1")))
        return super().hidden_states(wavs, lengths)
