"""Units of the video pipeline: the tracker (motion prediction, gaps in seconds, confirmation), the time-grid
windows (nearest frame, stride, end-aligned and padded windows, closing a stretch), the window policies and the
streaming moving average."""
import numpy as np
import pytest

from inference.smoothing import CentredAverage
from inference.tracking import FaceTracker
from inference.windows import Sample, TrackWindows, WindowPolicy, window_policy


def test_tracker_ids_motion_gaps_and_false_positives():
    tracker = FaceTracker(iou_threshold=0.3, max_gap_seconds=1.0, break_seconds=0.3, min_hits=3)
    a, b = np.array([0.0, 0, 50, 50]), np.array([300.0, 0, 50, 50])
    for k in range(4):  # a moves right 10 px per 0.1 s; b is seen twice only
        tracker.update(k / 10, [a + [10 * k, 0, 0, 0]] + ([b] if k < 2 else []))
    track_a, track_b = tracker.active
    assert (track_a.track_id, track_b.track_id) == (1, None)
    assert track_a.velocity[0] == pytest.approx(100, rel=0.2)  # px per second
    _, ended = tracker.update(1.15, [])
    assert ended == [track_b] and tracker.num_dropped == 1  # b: unconfirmed, absent > 1 s
    # a comes back 0.9 s after its last detection, 90 px further right: where its motion leads (its last box
    # no longer overlaps), so it keeps id 1, and the observation marks the absence
    observations, _ = tracker.update(1.2, [a + [120, 0, 0, 0]])
    assert [(o.track.track_id, o.resumed) for o in observations] == [(1, True)]
    observations, _ = tracker.update(1.3, [a + [130, 0, 0, 0]])
    assert observations[0].resumed is False
    _, ended = tracker.update(2.4, [])
    assert ended == [track_a]
    observations, _ = tracker.update(2.5, [a])
    assert observations[0].track.track_id is None  # a new track, not yet confirmed


def grid_windows(times, policy, close_at=()):
    """Offer a crop per time (the crop is its time); return (sample times, ids of the crops) per window."""
    windows, made = TrackWindows(policy), []

    def candidate(t):
        def make():
            made.append(t)
            return Sample(t, int(round(t * 100)), np.zeros(4), np.full((1, 1, 3), t))
        return make

    cut = []
    for t in times:
        if t in close_at:
            cut += windows.close(1)
        windows.offer(t, candidate(t))
        cut += windows.ready(1)
    cut += windows.close(1)
    return [(list(w.times), w.crops[:, 0, 0, 0].tolist()) for w in cut], made


def test_windows_take_the_nearest_frame_on_the_time_grid():
    policy = WindowPolicy(num_frames=3, sample_step=0.2, stride=0.4, source="test")
    times = [round(0.13 * k, 2) for k in range(12)]  # 7.7 fps, samples every 0.2 s
    cut, made = grid_windows(times, policy)
    grid = [round(0.2 * j, 1) for j in range(8)]  # up to the last frame at 1.43 s
    nearest = [min(times, key=lambda t: (abs(t - g), t)) for g in grid]
    assert [w[0] for w in cut] == [nearest[0:3], nearest[2:5], nearest[4:7], nearest[5:8]]  # last: end-aligned
    assert len(made) == len(set(made)) and set(made) == set(nearest)  # each used frame cropped once, no other


def test_short_stretch_is_padded_and_closing_splits_windows():
    policy = WindowPolicy(num_frames=4, sample_step=0.1, stride=0.2, source="test")
    cut, _ = grid_windows([0.0, 0.1], policy)
    assert cut == [([0.0, 0.1, 0.1, 0.1], [0.0, 0.1, 0.1, 0.1])]  # padded with the last sample
    cut, _ = grid_windows([0.0, 0.1, 0.2, 0.3, 0.4, 2.0, 2.1, 2.2, 2.3], policy, close_at={2.0})
    assert [w[0][0] for w in cut] == [0.0, 0.1, 2.0]  # no window spans the absence
    assert cut[1][0] == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_window_policies():
    dfew = window_policy("DFEW", 16)
    # 16 samples from the first frame of a 3 s clip to its last, a new window every 8 samples
    assert (dfew.sample_step, dfew.stride, dfew.span) == (pytest.approx(3 / 15), pytest.approx(1.6), pytest.approx(3))
    mafw = window_policy("MAFW", 16)
    assert mafw.sample_step == pytest.approx(1 / 25) and mafw.stride == pytest.approx(8 / 25)
    custom = window_policy("FERV39k", 8, source_fps=10, stride_seconds=0.1)
    assert (custom.sample_step, custom.stride_samples, custom.source) == (pytest.approx(0.1), 1, "command line")
    with pytest.raises(ValueError, match="either window_seconds"):
        window_policy("DFEW", 16, window_seconds=2, source_fps=25)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 7])
def test_streaming_average_equals_the_whole_sequence_average(k):
    rows = np.random.default_rng(k).random((9, 3))
    smoother, out = CentredAverage(k), []
    for i, row in enumerate(rows):
        out += smoother.push(i, row)
        assert len(smoother.rows) <= k  # holds only the rows still needed
    out += smoother.finish()
    assert [i for i, _ in out] == list(range(9))
    # row i averages rows i - (k - 1) // 2 .. i + k // 2 that exist
    expected = [rows[max(i - (k - 1) // 2, 0):i + k // 2 + 1].mean(axis=0) for i in range(9)]
    np.testing.assert_allclose(np.stack([p for _, p in out]), expected, atol=1e-12)
