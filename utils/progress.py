"""Running averages and step logs with throughput and ETA (for the epoch and for the whole run)."""
import datetime
import sys
import time
from collections import defaultdict, deque

from .distributed import all_reduce_mean


class Meter:
    """Windowed and global average of a scalar."""

    def __init__(self, window: int = 20):
        self.window = deque(maxlen=window)
        self.total, self.count = 0.0, 0

    def update(self, value: float, n: int = 1) -> None:
        self.window.append(value)
        self.total += value * n
        self.count += n

    @property
    def avg(self) -> float:
        return sum(self.window) / max(len(self.window), 1)

    @property
    def global_avg(self) -> float:
        return self.total / max(self.count, 1)


def format_duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(seconds)))


class ProgressLogger:
    """Collects meters; `log_every` wraps an iterable and prints a line every `print_freq` steps."""

    def __init__(self, header: str, print_freq: int = 10, unit: str = "clips", stream=None):
        self.header, self.print_freq, self.unit = header, print_freq, unit
        self.stream = stream if stream is not None else sys.stdout
        self.meters = defaultdict(Meter)

    def update(self, n: int = 1, **values) -> None:
        for name, value in values.items():
            if value is not None:
                self.meters[name].update(float(value), n)

    def summary(self) -> dict:
        """Global averages, averaged over processes."""
        return {name: all_reduce_mean(m.global_avg) for name, m in sorted(self.meters.items())}

    def log_every(self, iterable, total: int, samples_per_step: int = 1, steps_after: int = 0):
        """Yield from `iterable` (`total` steps, 0 when unknown); `steps_after` more steps of the same kind follow
        in the run (later epochs), so the run ETA extrapolates the mean step time over them too."""
        start = last = time.time()
        for step, item in enumerate(iterable):
            yield item
            done = step + 1
            if done % self.print_freq == 0 or done == total:
                now = time.time()
                mean_step = (now - start) / done
                window_rate = samples_per_step * min(self.print_freq, done) / max(now - last, 1e-9)
                last = now
                stats = "  ".join(f"{k}: {m.avg:.4g}" for k, m in sorted(self.meters.items()))
                eta = f"eta {format_duration(mean_step * max(total - done, 0))}" if total else "eta unknown"
                if steps_after:
                    eta += f" (run {format_duration(mean_step * (total - done + steps_after))})"
                print(f"{self.header} [{done}/{total or '?'}]  {stats}  {window_rate:.1f} {self.unit}/s  {eta}",
                      file=self.stream, flush=True)
        print(f"{self.header} done in {format_duration(time.time() - start)}", file=self.stream, flush=True)
