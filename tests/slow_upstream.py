"""A custom upstream for tests, loaded by ``--upstream slow_upstream:SlowWavLM``: WavLM, but slow.

It exercises the ``module:attr`` route and gives a kill -9 test time to strike mid-extraction.
"""

from __future__ import annotations

import time

from superb.extract.upstreams.ssl import WavLM


class SlowWavLM(WavLM):
    def hidden_states(self, wavs, lengths):
        time.sleep(0.1)
        return super().hidden_states(wavs, lengths)
