"""Helpers the test modules share (fixtures are in conftest.py): tiny models and inputs, tiny checkpoints,
running main_finetune.py and reading its log, a Hugging Face cache laid out offline."""
import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import torch

from datasets.synthetic import write_synthetic_dfew
from models.checkpoint import save_checkpoint
from models.image_model import S2DImage
from models.registry import build_model
from models.s2d import S2D

ROOT = Path(__file__).resolve().parents[1]
KEYS = json.loads((Path(__file__).parent / 'data' / 'keys_s2d_base.json').read_text())
TINY = dict(img_size=16, patch_size=4, embed_dim=64, depth=4, num_heads=4, num_frames=3,
            num_classes=5, landmark_channels=6, adapter_ratio=0.25, prompt_hidden=4)
IMAGE_TINY = {k: v for k, v in TINY.items() if k not in ('num_frames', 'adapter_ratio')}
# MKL's results may depend on memory alignment; strict mode keeps reruns bit-identical (needed for exact resume).
ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "MKL_CBWR": "AUTO,STRICT"}


def tiny_model(name="tiny", seed=0, **overrides):
    """A small model, its initial weights drawn after torch.manual_seed(seed): "tiny" (S2D of TINY), "tiny_image"
    (S2DImage of IMAGE_TINY) or a registered name (models.build_model, e.g. s2d_tiny_patch8_112); `overrides`: its
    constructor's arguments."""
    torch.manual_seed(seed)
    if name == "tiny":
        return S2D(**{**TINY, **overrides})
    if name == "tiny_image":
        return S2DImage(**{**IMAGE_TINY, **overrides})
    return build_model(name, **overrides)


def tiny_inputs(model, batch=2, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    t, s, grid = model.num_frames, model.img_size, model.grid_size
    video = torch.randn(batch, 3, t, s, s, generator=g, dtype=dtype)
    landmarks = torch.randn(batch * t, model.landmark_channels, grid, grid, generator=g, dtype=dtype)
    return video, landmarks


@torch.no_grad()
def randomize(model, seed=2):
    """Large random values everywhere so every path of the forward matters numerically."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3
        if name.endswith('smooth'):
            p.copy_(2.0 + noise.abs())
        elif 'norm' in name and name.endswith('weight'):
            p.copy_(1.0 + noise)
        else:
            p.copy_(noise)
    return model


def tiny_checkpoint(path, num_frames=4, data_set="DFEW", num_classes=7, model="s2d_tiny_patch8_64",
                    with_args=True, **stored):
    """A fine-tuned-layout checkpoint of a random-weight video model (stored args as this project writes them, and
    `stored`: more of them, e.g. clip_sampling)."""
    state = tiny_model(model, num_classes=num_classes, num_frames=num_frames).state_dict()
    args = argparse.Namespace(model=model, num_frames=num_frames, data_set=data_set, scale_factor=0.25, **stored)
    save_checkpoint({"model": state, "epoch": "best", **({"args": args} if with_args else {})}, path)
    return path


def write_tiny_dfew(root, size=112):
    """The synthetic DFEW that main_finetune.py is run on (5 clips per class of 4 frames at `size` px, one fold) in
    `root`; returns `root`."""
    write_synthetic_dfew(root, clips_per_class=5, num_frames=4, size=size, folds=1, seed=0)
    return root


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served_app(args, cwd, log, env=None):
    """app.py with `args` (a --port is added) started in `cwd` as a user does, its output in the file `log`; yields
    its URL once it answers, then stops it with SIGTERM and waits for it to exit."""
    port = free_port()
    with open(log, "w") as handle:
        server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), *args], cwd=cwd,
                                  env=dict(os.environ, CUDA_VISIBLE_DEVICES="", **(env or {})), stdout=handle,
                                  stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120  # start-up imports gradio and torch: slow on a loaded machine
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                server.kill()
                raise AssertionError(f"app.py did not start:\n{Path(log).read_text()[-3000:]}") from None
            time.sleep(0.3)
    try:
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def run_main(args, check=True, launcher=(sys.executable, "main_finetune.py")):
    result = subprocess.run([*launcher, *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"main_finetune.py failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-3000:]}")
    return result


def main_in_process(args):
    """main_finetune.py's run of `args` in the test's own process (no interpreter start-up)."""
    import main_finetune
    main_finetune.main(main_finetune.get_args_parser().parse_args(args))


def read_log(output_dir):
    return [json.loads(line) for line in (Path(output_dir) / "log.txt").read_text().splitlines()]


def fake_hub_cache(root, files):
    """A Hugging Face cache holding one snapshot of cyinen/S2D, laid out as huggingface_hub writes it."""
    repo = root / "models--cyinen--S2D"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "blobs").mkdir()
    for name, content in files.items():
        blob = repo / "blobs" / f"blob{len(content)}{abs(hash(name))}"
        blob.write_bytes(content)
        link = repo / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
