"""The shared utilities: device and precision choice (the bf16 fallback forced), atomic files; and the speed-ups
that analysis runs by default, against the reference computation."""
import numpy as np
import pytest
import torch

from inference.model import VideoModel
from models.checkpoint import describe
from utils.device import DeviceError, choose_device, inference_autocast_dtype, training_autocast_dtype
from utils.files import atomic_output, write_csv_atomically

pytestmark = pytest.mark.filterwarnings("ignore:LandmarkFeatures")


def test_device_choice_and_its_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_device() == "cpu" and choose_device("cpu") == "cpu"
    with pytest.raises(DeviceError, match="no CUDA device is available; use --device cpu"):
        choose_device("cuda")
    with pytest.raises(DeviceError, match="'gpu' is not a device name"):
        choose_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_device() == "cuda" and choose_device(cpu_only=True) == "cpu"
    with pytest.raises(DeviceError, match="int8 runs on the CPU only"):
        choose_device("cuda:1", cpu_only=True)


@pytest.mark.parametrize("bf16", [True, False])
def test_analysis_falls_back_to_float16_on_a_gpu_without_bfloat16(monkeypatch, bf16):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100")
    cuda = torch.device("cuda")
    assert inference_autocast_dtype(cuda) == (torch.bfloat16 if bf16 else torch.float16)
    assert inference_autocast_dtype(torch.device("cpu")) is None
    assert training_autocast_dtype(cuda, "float16") == torch.float16
    assert training_autocast_dtype(torch.device("cpu"), "bfloat16") is None
    if bf16:
        assert training_autocast_dtype(cuda, "bfloat16") == torch.bfloat16
    else:  # training has no silent fallback: the message says what to pass
        with pytest.raises(DeviceError, match="Tesla V100 has no bfloat16 support.*--amp_dtype float16"):
            training_autocast_dtype(cuda, "bfloat16")


def test_atomic_output_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "result.csv"
    write_csv_atomically(path, ("id", "label"), [("a,b", 1), ('say "hi"', 2)])
    before = path.read_text()
    assert before == 'id,label\n"a,b",1\n"say ""hi""",2\n'
    with pytest.raises(RuntimeError), atomic_output(path) as tmp_path_:
        with open(tmp_path_, "w") as handle:
            handle.write("half")
        raise RuntimeError("crash while writing")
    assert path.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["result.csv"]


def test_analysis_speedups_give_the_reference_probabilities(checkpoint):
    default, reference = (VideoModel(checkpoint, "random", speedups=on, backend="torch", precision="fp32")
                          for on in (True, False))
    assert all(block.lean_layout for block in default.model.prompt_blocks)
    assert not any(block.lean_layout for block in reference.model.prompt_blocks)
    batchnorms = [sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.landmark.modules())
                  for model in (default, reference)]
    assert batchnorms[0] == 0 < batchnorms[1]  # folded into the convolutions
    clips = [np.random.default_rng(seed).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8) for seed in range(3)]
    np.testing.assert_allclose(default.classify(clips), reference.classify(clips), rtol=1e-4, atol=1e-6)


def test_describe_lists_the_stored_arguments(checkpoint):
    lines = describe(checkpoint)
    assert lines[0].endswith("entries ['args', 'epoch', 'model']") and "epoch: 'best'" in lines
    assert "args.data_set = 'DFEW'" in lines and "args.num_frames = 4" in lines
