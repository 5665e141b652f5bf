"""The time left shown in the terminal and the app: a fake clock drives it, so no test depends on wall time."""

from scelmo_desktop.core._infra.jobs import TimeLeft


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_cached_items_at_the_start_do_not_count_as_pace():
    clock = FakeClock()
    left = TimeLeft(clock)
    assert left.update("embed", 0, 2000) is None
    clock.now = 0.01
    assert left.update("embed", 1800, 2000) is None  # found in the store at once: not a pace
    clock.now = 2.0
    # 10 texts in 1.99 s since the cached ones: 190 left take ~37.8 s (tqdm's rate would have said ~0.2 s)
    assert abs(left.update("embed", 1810, 2000) - 1.99 / 10 * 190) < 1e-9


def test_unknown_until_a_unit_finishes_and_reset_per_stage():
    clock = FakeClock()
    left = TimeLeft(clock)
    left.update("describe", 0, 10)
    clock.now = 5.0
    assert left.update("describe", 0, 10) is None  # nothing finished yet: unknown, not zero
    clock.now = 10.0
    assert left.update("describe", 2, 10) == 10.0 / 2 * 8
    assert left.update("describe", 10, 10) is None  # done
    assert left.update("cluster", 0, 3) is None  # a new stage starts its own measurement
    clock.now = 11.0
    assert left.update("cluster", 1, 3) == 1.0 / 1 * 2
