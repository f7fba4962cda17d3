"""The GPU check's scripts run on the CPU with tiny settings: profile_s2d.py, benchmark_gpu.py, benchmark_epoch.py."""
import json

import pytest
import torch

from benchmarks import benchmark_epoch, benchmark_gpu, profile_s2d

TINY = ["--device", "cpu", "--model", "s2d_tiny_patch8_64"]


@pytest.fixture(autouse=True)
def one_thread():
    """Small ops on a CPU shared with other work run far faster on one thread than on two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_profile_attributes_the_whole_step_to_module_groups(tmp_path):
    inference, train = profile_s2d.main(TINY + ["--batch_size", "2", "--num_frames", "2",
                                                "--json", str(tmp_path / "p.json")])
    for result in (inference, train):
        groups = {g: row.get("cpu_ms", 0) for g, row in result["groups"].items()}
        total = sum(groups.values())
        # the operators' own times cover the step: close to its unprofiled wall time
        assert 0.5 * result["wall_ms"] < total < 2.0 * result["wall_ms"]
        for group in (profile_s2d.LANDMARK, profile_s2d.PATCH, profile_s2d.PROMPT, profile_s2d.TMA,
                      profile_s2d.VIT_BLOCKS):
            assert groups[group] > 0, group
        assert groups[profile_s2d.OTHER] < 0.2 * total  # the backward pass is attributed to its modules too
    assert train["groups"][profile_s2d.OPTIMIZER]["cpu_ms"] > 0 == inference["groups"][profile_s2d.OPTIMIZER].get(
        "cpu_ms", 0)
    backward = [[op["name"] for op in r["top_cpu_ops"] if "backward" in op["name"].lower()] for r in (inference, train)]
    assert backward[0] == [] and backward[1]  # the training step's own backward operators are profiled
    assert train["top_cpu_ops"] and train["top_cpu_ops"][0]["ms"] >= train["top_cpu_ops"][-1]["ms"]
    table = profile_s2d.table(train, cuda=False)
    assert len(table) == 3 + len(profile_s2d.GROUPS) + 1
    assert abs(sum(float(line.split("|")[3]) for line in table[3:-1]) - 100) < 0.5
    assert json.loads((tmp_path / "p.json").read_text())["results"][1]["mode"] == "train"


@pytest.mark.slow
def test_benchmark_gpu_times_variants_side_by_side_with_ratios(tmp_path):
    out = benchmark_gpu.main(TINY + ["--frames", "2", "--batches", "1", "--iters", "1", "--warmup", "0",
                                     "--variants", "S2D eager,ViT eager,S2D lean+fold,S2D lean+fold cuda_graph",
                                     "--test_clips", "1", "--test_workers", "0", "--json", str(tmp_path / "b.json")])
    rows = {(r["variant"], r["mode"]): r for r in out["rows"]}
    assert set(rows) == {(v, m) for v in ("S2D eager", "ViT eager", "S2D lean+fold") for m in ("inference", "train")}
    assert [line.split(":")[0] for line in out["ratios"]] == [
        "S2D eager, inference, batch 1", "S2D eager, train, batch 1",
        "S2D lean+fold, inference, batch 1", "S2D lean+fold, train, batch 1"]
    ratio = rows[("S2D eager", "train")]["ms_per_step"] / rows[("ViT eager", "train")]["ms_per_step"]
    assert out["ratios"][1].startswith(f"S2D eager, train, batch 1: {ratio:.2f}x ViT eager (aim <= 1.0x: ")
    views = out["test_pass"]
    assert (views["all views"]["forward_passes"], views["distinct views"]["forward_passes"]) == (4, 1)
    assert json.loads((tmp_path / "b.json").read_text())["rows"] == out["rows"]


def test_largest_batch_search_doubles_then_narrows_the_gap():
    tried = []

    def run(batch):
        tried.append(batch)
        return {"oom": True} if batch > 50 else {"batch": batch}

    assert benchmark_gpu.search_largest(run, 8, tries=10) == (48, {"batch": 48})
    assert tried == [8, 16, 32, 64, 48, 56]
    assert benchmark_gpu.search_largest(lambda batch: {"oom": True}, 8, tries=10) == (None, None)


def test_epoch_breakdown_times_loader_model_and_real_epoch(tmp_path, monkeypatch):
    """After the warm-up, the model alone trains the steps of an epoch on one repeated batch, then the real epoch
    the same steps from the data loader."""
    epochs, train_one_epoch = [], benchmark_epoch.train_one_epoch

    def recorded(model, landmark, criterion, batches, *args, steps_per_epoch, **kwargs):
        epochs.append((type(batches).__name__, steps_per_epoch))
        return train_one_epoch(model, landmark, criterion, batches, *args, steps_per_epoch=steps_per_epoch, **kwargs)

    monkeypatch.setattr(benchmark_epoch, "train_one_epoch", recorded)
    result = benchmark_epoch.main(TINY + ["--size", "64", "--frames", "4", "--clips", "6", "--distinct", "2",
                                          "--batch_size", "2", "--workers", "1", "--warmup", "1"])
    assert epochs == [("RepeatedBatch", 1), ("RepeatedBatch", 3), ("DataLoader", 3)] and result["clips"] == 6
    assert benchmark_epoch.summary_line(result).startswith("epoch of 6 clips, batch 2: loader alone ")


def test_epoch_clips_beyond_the_distinct_ones_are_hard_links(tmp_path):
    csv_path = benchmark_epoch.write_clips(tmp_path, 5, 2, 3, 32)
    assert csv_path.read_text().splitlines()[1:] == [f"{i:05d},{i % 7}" for i in range(5)]
    assert (tmp_path / "00004" / "00002.jpg").stat().st_ino == (tmp_path / "00000" / "00002.jpg").stat().st_ino
    assert (tmp_path / "00001" / "00000.jpg").stat().st_ino != (tmp_path / "00000" / "00000.jpg").stat().st_ino
