"""Shared by the benchmark scripts: print a result and keep it in benchmarks/results/."""

import json
from pathlib import Path


def report(name: str, result: dict) -> dict:
    print(json.dumps(result, indent=2))
    folder = Path(__file__).parent / "results"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(result, indent=2))
    return result


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 20 ms), in MB above the start.

    RSS sees what tracemalloc misses (numba, igraph, llama.cpp and BLAS allocate outside Python)."""

    def __init__(self, interval: float = 0.02, *, children: bool = False):
        self.interval = interval
        self.children = children  # add the RSS of child processes (Dask workers, a server)
        self.peak_mb = 0.0

    def __enter__(self):
        import threading

        import psutil

        self._process = psutil.Process()
        self._start = self._rss()
        self._peak = self._start
        self._stop = threading.Event()

        def sample():
            while not self._stop.wait(self.interval):
                self._peak = max(self._peak, self._rss())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._rss())
        self.peak_mb = (self._peak - self._start) / 1e6
        self.total_mb = self._peak / 1e6

    def _rss(self) -> int:
        import psutil

        total = self._process.memory_info().rss
        if self.children:
            for child in self._process.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:  # a child that just exited
                    pass
        return total
