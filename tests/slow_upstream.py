"""A custom upstream for tests, loaded by ``--upstream slow_upstream:SlowFbank``: fbank, but slow.

It exercises the ``module:attr`` route and gives a kill -9 test time to strike mid-extraction.
"""

from __future__ import annotations

import time

from superb.extract.upstreams.kaldi import Fbank


class SlowFbank(Fbank):
    name = "slow_fbank"

    def hidden_states(self, wavs, lengths):
        time.sleep(0.15)
        return super().hidden_states(wavs, lengths)
