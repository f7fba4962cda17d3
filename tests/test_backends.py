"""The ONNX export (scripts/export_onnx.py, inference/export.py) and the analysis backends (inference/backends.py):
exactness of ONNX Runtime and OpenVINO in fp32, what `auto` chooses for each kind of CPU (flags faked), fallbacks,
the cache, and what predict.py records."""
import csv
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

import predict
from datasets.classes import DFEW_CLASSES
from inference import backends
from inference.backends import (
    Cpu,
    OnnxRuntimeRunner,
    OpenVINORunner,
    TorchRunner,
    candidates,
    check_clips,
    load_backend,
    read_cpu,
)
from inference.export import file_sha256
from inference.model import VideoModel
from scripts import export_onnx
from scripts.make_synthetic_video import write_video
from tests.helpers import ROOT, tiny_checkpoint

AVX2 = Cpu("AMD EPYC", frozenset({"avx", "avx2", "fma"}))
AVX512_BF16 = Cpu("Intel Xeon", frozenset({"avx2", "avx512f", "avx512_bf16"}))
AMX = Cpu("Intel Xeon", frozenset({"avx2", "amx_tile", "amx_bf16", "amx_int8"}))


def torch_fp32(checkpoint, **settings):
    return VideoModel(checkpoint, "random", "cpu", backend="torch", precision="fp32", **settings)


def relative_logit_difference(expected, got):
    return float((expected[0] - got[0]).abs().max() / expected[0].abs().max())


def exported(video_model, tmp_path):
    path = tmp_path / "model.onnx"
    export_onnx.export_onnx(video_model, path)
    return str(path)


def test_export_holds_the_whole_model_and_its_metadata_and_onnxruntime_matches(checkpoint, tmp_path):
    video_model = torch_fp32(checkpoint)
    path = exported(video_model, tmp_path)
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["video"]
    assert [o.name for o in model.graph.output] == ["logits", "feature"]
    batch, channels, frames, height, width = model.graph.input[0].type.tensor_type.shape.dim
    assert batch.dim_param and [d.dim_value for d in (channels, frames, height, width)] == [3, 4, 64, 64]
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["class_names"]) == video_model.class_names and json.loads(meta["num_frames"]) == 4
    assert json.loads(meta["input_size"]) == 64 and json.loads(meta["mean"]) == pytest.approx([0.485, 0.456, 0.406])
    assert json.loads(meta["window_policy"])["sample_step"] == pytest.approx(1.0)  # DFEW: 4 samples over 3 s
    assert meta["checkpoint_sha256"] == file_sha256(checkpoint)
    assert set(json.loads(meta["exporter"])) == {"torch", "onnx"} and meta["landmark_weights_sha256"] == "random"
    # the landmark network is inside: the graph holds MobileFaceNet's convolutions, and the only input is the video
    calls = {"landmark": 0, "s2d": 0}
    for part in ("landmark", "model"):
        for module in getattr(video_model, part).modules():
            if isinstance(module, torch.nn.Conv2d):
                key = "landmark" if part == "landmark" else "s2d"
                module.register_forward_hook(lambda *_, key=key: calls.__setitem__(key, calls[key] + 1))
    inputs = check_clips(video_model, 3)  # a batch of 3: the exported example had 1
    expected = TorchRunner(video_model.model, video_model.landmark, video_model.device, "fp32")(inputs)
    assert sum(node.op_type == "Conv" for node in model.graph.node) == calls["landmark"] + calls["s2d"]
    assert calls["landmark"] > 30
    got = OnnxRuntimeRunner(path)(inputs)
    assert relative_logit_difference(expected, got) <= 1e-5
    torch.testing.assert_close(got[1], expected[1], atol=1e-5, rtol=0)
    assert expected[0].std() > 0.1  # the logits are not all alike: the comparison means something


def test_openvino_fp32_matches_pytorch(checkpoint, tmp_path):
    video_model = torch_fp32(checkpoint)
    inputs = check_clips(video_model, 2)
    expected = TorchRunner(video_model.model, video_model.landmark, video_model.device, "fp32")(inputs)
    got = OpenVINORunner(exported(video_model, tmp_path), "fp32", str(tmp_path / "ov"))(inputs)
    assert relative_logit_difference(expected, got) <= 1e-5
    torch.testing.assert_close(got[1], expected[1], atol=1e-5, rtol=0)


def test_openvino_models_freed_in_creation_order_leave_signal_handling_intact(tmp_path):
    """OpenVINO gives each compiled model's thread a signal stack of its own; two models freed in the order they
    were made left the thread on freed memory, and the next signal a Python handler took (a stop request) killed the
    process with SIGSEGV. In a child process, so that a crash fails this test only."""
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"])], "relu",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)]), tmp_path / "relu.onnx")
    code = ("import gc, os, signal, time\n"
            "from inference.backends import OpenVINORunner\n"
            f"first, second = (OpenVINORunner({str(tmp_path / 'relu.onnx')!r}, 'fp32', {str(tmp_path / 'ov')!r}) "
            "for _ in range(2))\n"
            "del first; gc.collect(); del second; gc.collect()\n"
            "signal.signal(signal.SIGUSR1, lambda *_: print('handled', flush=True))\n"
            "os.kill(os.getpid(), signal.SIGUSR1); time.sleep(0.1)\n")
    result = subprocess.run([sys.executable, "-X", "faulthandler", "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert (result.returncode, result.stdout) == (0, "handled\n"), result.stderr[-2000:]


@pytest.mark.slow
def test_base_model_exports_and_onnxruntime_matches(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "base.pth", num_frames=16, model="s2d_base_patch16_224")
    video_model = torch_fp32(checkpoint)
    inputs = check_clips(video_model, 1)
    expected = TorchRunner(video_model.model, video_model.landmark, video_model.device, "fp32")(inputs)
    got = OnnxRuntimeRunner(exported(video_model, tmp_path))(inputs)
    assert relative_logit_difference(expected, got) <= 1e-5


def test_export_script_writes_checks_and_refuses_bad_input(checkpoint, tmp_path, capsys):
    output = tmp_path / "out" / "s2d.onnx"
    assert export_onnx.main(["--checkpoint", str(checkpoint), "--output", str(output),
                             "--landmark_weights", "random"]) == 0
    assert "ONNX Runtime vs PyTorch on 2 drawn faces" in capsys.readouterr().err
    onnx.checker.check_model(onnx.load(output))
    assert export_onnx.main(["--checkpoint", str(tmp_path / "missing.pth"), "--output", str(output),
                             "--landmark_weights", "random"]) == 4
    assert "missing.pth" in capsys.readouterr().err
    assert export_onnx.main(["--checkpoint", str(checkpoint), "--output", str(tmp_path), "--landmark_weights",
                             "random"]) == 2


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
                    "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n\nprocessor\t: 1\n"
                    "model name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: fpu avx2\n")
    cpu = read_cpu(str(info))
    assert cpu.name == "Intel(R) Xeon(R) Platinum 8480+" and cpu.native_bf16 and "amx_tile" in cpu.flags
    info.write_text("model name\t: AMD EPYC 7B13\nflags\t\t: fpu avx avx2 fma\n")
    assert not read_cpu(str(info)).native_bf16
    assert read_cpu(str(tmp_path / "none")) == Cpu("", frozenset())


@pytest.mark.parametrize("cpu", [AVX512_BF16, AMX])
def test_auto_tries_bf16_first_only_with_native_bf16(cpu):
    paths, missing = candidates("auto", "auto", cpu, lambda b: True)
    assert paths[0] == ("openvino", "bf16", True) and ("torch", "bf16", True) in paths
    assert paths[-1] == ("torch", "fp32", False) and missing == []
    assert all(verify for *_, verify in paths[:-1])  # every path before PyTorch fp32 must pass its check


def test_auto_never_tries_int8_nor_bf16_without_native_bf16():
    assert candidates("auto", "auto", AVX2, lambda b: True)[0] == [("torch", "fp32", False)]
    for cpu in (AVX2, AMX):
        assert not any(p == "int8" for _, p, _ in candidates("auto", "auto", cpu, lambda b: True)[0])
    assert candidates("onnxruntime", "auto", AMX, lambda b: True)[0] == [("onnxruntime", "fp32", False)]


def test_an_explicit_precision_or_backend_narrows_the_choice():
    assert candidates("openvino", "fp32", AVX2)[0] == [("openvino", "fp32", False)]  # as asked: no check
    assert candidates("auto", "int8", AVX2, lambda b: b != "onnxruntime")[0] == [("torch", "int8", False)]
    assert candidates("auto", "bf16", AMX, lambda b: True)[0] == [("openvino", "bf16", False)]
    openvino_paths, _ = candidates("openvino", "auto", AMX, lambda b: True)
    assert openvino_paths == [("openvino", "bf16", True), ("openvino", "fp32", False)]
    assert candidates("openvino", "auto", AVX2, lambda b: True)[0] == [("openvino", "fp32", False)]
    assert candidates("onnxruntime", "auto", AVX2, lambda b: True)[0] == [("onnxruntime", "fp32", False)]


def test_missing_packages_fall_back_to_pytorch_with_one_line(checkpoint, monkeypatch):
    monkeypatch.setattr(backends, "installed", lambda backend: backend == "torch")
    monkeypatch.setattr(backends, "read_cpu", lambda: AVX2)
    monkeypatch.setitem(backends.FASTEST_FIRST, "no_bf16", (("openvino", "fp32"), ("onnxruntime", "fp32"),
                                                            ("torch", "fp32")))
    lines = []
    video_model = VideoModel(checkpoint, "random", "cpu", log=lines.append)
    choice = video_model.backend
    assert (choice.backend, choice.precision) == ("torch", "fp32")
    assert lines == ["backend auto: openvino, onnxruntime not installed (bash scripts/setup.sh installs it): skipped"]
    assert choice.reason.startswith("auto: no faster path installed and verified; CPU ")


def test_auto_takes_a_verified_path_and_caches_export_and_verdict(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(backends, "read_cpu", lambda: AVX2)
    monkeypatch.setitem(backends.FASTEST_FIRST, "no_bf16", (("openvino", "fp32"), ("torch", "fp32")))
    lines = []
    first = VideoModel(checkpoint, "random", "cpu", cache_dir=str(tmp_path), log=lines.append)
    assert (first.backend.backend, first.backend.precision) == ("openvino", "fp32")
    assert "max |dlogit|" in first.backend.reason and "no native bf16" in first.backend.reason
    assert any(line.startswith("exporting") for line in lines) and any("verifying" in line for line in lines)
    folder, = tmp_path.iterdir()
    verdict = json.loads((folder / "verified.json").read_text())["openvino/fp32"]
    assert verdict["agrees"] and verdict["max_logit_difference"] < 1e-5
    lines.clear()
    second = VideoModel(checkpoint, "random", "cpu", cache_dir=str(tmp_path), log=lines.append)
    assert lines == [] and second.backend.backend == "openvino"  # nothing exported or verified again
    clips = [np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), np.uint8)]
    np.testing.assert_allclose(second.classify(clips), torch_fp32(checkpoint).classify(clips), atol=1e-6)
    other = tiny_checkpoint(tmp_path / "other.pth", num_classes=5, data_set="MAFW")  # another checkpoint: new key
    VideoModel(other, "random", "cpu", cache_dir=str(tmp_path), log=lines.append, data_set="FRAMES")
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2


def test_a_path_that_fails_its_check_is_skipped(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(backends, "read_cpu", lambda: AVX2)
    monkeypatch.setitem(backends.FASTEST_FIRST, "no_bf16", (("openvino", "fp32"), ("torch", "fp32")))
    monkeypatch.setattr(backends, "FP32_TOLERANCE", 0.0)  # no fp32 path can be that exact: all but torch fail
    lines = []
    video_model = VideoModel(checkpoint, "random", "cpu", cache_dir=str(tmp_path), log=lines.append)
    assert (video_model.backend.backend, video_model.backend.precision) == ("torch", "fp32")
    assert any(line.startswith("backend auto: openvino fp32 did not agree with PyTorch fp32") for line in lines)
    assert video_model.backend.notes and "did not agree" in video_model.backend.notes[0]


def test_native_bf16_cpus_get_bf16_when_it_agrees(checkpoint, tmp_path, monkeypatch):
    """The selection on a (faked) AMX CPU: OpenVINO bf16 is tried first and checked against fp32 (here, without
    native bf16, OpenVINO computes it in fp32, so only the selection and the check are exercised)."""
    monkeypatch.setattr(backends, "read_cpu", lambda: AMX)
    video_model = VideoModel(checkpoint, "random", "cpu", cache_dir=str(tmp_path), log=lambda line: None)
    assert (video_model.backend.backend, video_model.backend.precision) == ("openvino", "bf16")
    assert "native bf16" in video_model.backend.reason and "top-1 agreement 100%" in video_model.backend.reason


def test_torch_bf16_on_a_cpu_without_it_warns(checkpoint):
    lines = []
    runner, choice = load_backend(torch_fp32(checkpoint), "torch", "bf16", log=lines.append)
    assert runner.amp_dtype == torch.bfloat16 and choice.reason.startswith("asked for")
    assert lines == ["warning: this CPU has no native bf16 (AMX or AVX512-BF16): bf16 is emulated, slower than fp32"]


def test_predict_records_the_backend_and_refuses_what_cannot_run(checkpoint, tmp_path, capsys):
    video = tmp_path / "synthetic.mp4"
    write_video(video, ["happy", "surprise"], 6, 64, 8.0, seed=0)
    flags = ["--checkpoint", str(checkpoint), "--landmark_weights", "random", "--no_detect", "--max_seconds", "1.0",
             "--no_video", "--source_fps", "8", "--video", str(video)]
    runs = {}
    for backend, precision in (("torch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "auto"), ("auto", "int8")):
        out = tmp_path / f"{backend}-{precision}"
        assert predict.run([*flags, "--output_dir", str(out), "--backend", backend, "--precision", precision]) == 0
        summary = json.loads((out / "summary.json").read_text())
        with open(out / "predictions.csv", newline="") as handle:
            runs[backend, precision] = np.array([[float(r[n]) for n in DFEW_CLASSES] for r in csv.DictReader(handle)])
        assert summary["backend"]["backend"] == (backend if backend != "auto" else summary["backend"]["backend"])
        assert f"model on {summary['backend']['backend']} {summary['backend']['precision']} (" in \
            capsys.readouterr().err
    assert summary["backend"]["precision"] == "int8" and summary["backend"]["reason"].startswith("auto: the fastest")
    fp32 = runs["torch", "fp32"]
    np.testing.assert_allclose(runs["onnxruntime", "fp32"], fp32, atol=1e-5)
    np.testing.assert_allclose(runs["openvino", "auto"], fp32, atol=1e-5)
    assert 0 < np.abs(runs["auto", "int8"] - fp32).max() < 0.05  # int8 really ran, close to fp32
    for extra in (["--backend", "openvino", "--precision", "int8"], ["--backend", "onnxruntime", "--device", "cuda"]):
        assert predict.run([*flags, "--output_dir", str(tmp_path / "refused"), *extra]) == 2
        assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "refused").exists()
