"""Smoothing of a track's window probabilities over time."""
from collections import deque

import numpy as np


class CentredAverage:
    """Centred moving average over `k` consecutive rows (fewer at the ends of the sequence), streaming: each
    row's average is emitted, with its payload, as soon as the rows it needs have been pushed, and only those
    rows are kept."""

    def __init__(self, k: int):
        self.k = k
        self.rows = deque()  # (payload, probabilities) not yet emitted or still needed
        self.emitted = 0  # rows emitted so far
        self.dropped = 0  # rows dropped from the front

    def push(self, payload, probabilities):
        self.rows.append((payload, probabilities))
        return self._emit(final=False)

    def finish(self):
        return self._emit(final=True)

    def _emit(self, final):
        out = []
        before, after = (self.k - 1) // 2, self.k // 2
        while self.emitted < self.dropped + len(self.rows):
            i = self.emitted  # absolute index of the next row to emit
            last_needed = i + after
            if not final and last_needed >= self.dropped + len(self.rows):
                break
            low, high = max(i - before, self.dropped), min(last_needed, self.dropped + len(self.rows) - 1)
            window = [self.rows[j - self.dropped][1] for j in range(low, high + 1)]
            out.append((self.rows[i - self.dropped][0], np.mean(window, axis=0)))
            self.emitted += 1
            while self.dropped < self.emitted - before:
                self.rows.popleft()
                self.dropped += 1
        return out
