"""Run the ORIGINAL S2D code on small fixed inputs and save what it computed, for tests/test_parity_original.py
(docs/DIFFERENCES.md, "How we know").

    git clone https://github.com/MSA-LMC/S2D /tmp/s2d_original && git -C /tmp/s2d_original checkout e1b5e5d
    .venv/bin/pip install --no-deps --target /tmp/s2d_original_packages timm==0.6.13
    .venv/bin/python scripts/parity/make_fixtures.py --original /tmp/s2d_original --packages /tmp/s2d_original_packages

The original's files are imported from the checkout (their git blob ids must be those of commit e1b5e5d), with
timm 0.6.13 (its requirements' pin) from --packages; this project's code is never imported. What the fixtures do
not use is stubbed: pytorchvideo, numpy.lib.function_base (gone in numpy 2) and tensorboardX, which
datasets/kinetics.py and utils/__init__.py import. On the CPU, the training loop's gradient scaler
(torch.cuda.amp.GradScaler) scales on the CPU and its torch.cuda.synchronize is a no-op. Writes
tests/data/parity/*.pt (torch.save of tensors, lists, dicts and numbers) and manifest.json.
"""
import argparse
import ast
import contextlib
import hashlib
import importlib
import io
import json
import random
import sys
import tempfile
import types
import warnings
from argparse import Namespace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ORIGINAL_COMMIT = "e1b5e5dfb57ab15f70103c933b346bfa62943159"
ORIGINAL_FILES = {  # the files the fixtures import, with their git blob ids at ORIGINAL_COMMIT
    "model_finetuning.py": "17ea7c1d79a99b5b7f65dc20e48f9614986215a5",
    "SDL.py": "0e3bf9fb58a47ec225e85467872775f4ab49480e",
    "landmark/__init__.py": "0bda24fd481d73aa8f733271b4177e210bd0bc65",
    "landmark/backbone.py": "9b831500bcba82a3cabc1d3b8ff99df355cc52f9",
    "landmark/mobilefacenet.py": "2086ad88b5629a8de049db3996a559dfb562b5b6",
    "landmark/basenet.py": "45f755eaf212e14941aa18e7cd077c1c84ee2da2",
    "landmark/pfld_compressed.py": "c167af377deccf55cfabb15dc4cb91fb313d23c0",
    "datasets/__init__.py": "867fc7e3cdea4d595e6a2ff5a840bf19f8297792",
    "datasets/datasets.py": "ea5bfb7684b27039e2d25c2996c64571309da367",
    "datasets/kinetics.py": "873e58ed9235571bfe47dc1cc93fe882176f2193",
    "datasets/video_transforms.py": "7c87c97b8669efd525f604fb62a81219774adb5b",
    "datasets/random_erasing.py": "85abc39d9d6af7f192e93ea176d02f98d3704d5e",
    "datasets/rand_augment.py": "1bc94f54de37d813779e7439fa3165e1de603feb",
    "datasets/functional.py": "487e8590ba0511d3cd10c5b8257818ced936d077",
    "datasets/volume_transforms.py": "be049ace8fca1e4fa452223d59fe87c590e16ec2",
    "datasets/transforms.py": "dfa2798377b66a904d32d972a56bf52d04d09ce4",
    "datasets/masking_generator.py": "abb522c9bc0181c09cf431d4905ad01b46a01c8c",
    "utils/__init__.py": "639a111892ae8ad69baa29b385a14f48d1be82cc",
    "utils/mixup.py": "ad6b389060fff0f4320d373f4b4fa19791d2a150",
    "utils/optim_factory.py": "00635abb3422ddda1d58cb4b75835919f05a255d",
    "utils/loss.py": "f5df19fd6321c3240995407afd35350e26e4edf1",
    "engine_for_finetuning.py": "8ceadb9df9525a632e70c31727a185e529cbde9c",
    "run_class_finetuning.py": "38cb8ac373ff34216c90f68ba7513c20412867b4",
}
TIMM_VERSION = "0.6.13"
OUTPUT = Path(__file__).resolve().parents[2] / "tests" / "data" / "parity"

# The tiny S2D of the model and training fixtures: a 14x14 patch grid (the original hard-codes the landmark grid 14),
# an adapter hidden size of 8 (the temporal attention has 8 heads), 3 layers (so that prompt_norms[i - 1] matters).
TINY_S2D = dict(img_size=14, patch_size=1, embed_dim=32, depth=3, num_heads=4, num_frames=3, num_classes=7,
                landmark_channels=8, adapter_scale=0.25)
GRID = 14
# Frame k of an index-fixture clip is a constant grey image of this value, so an output shows which frame it is.
FRAME_VALUE = dict(step=3, offset=2)
INDEX_CLIP_LENGTHS = [3, 15, 16, 17, 20, 33, 64, 70]
AUGMENT_CLIP_LENGTHS = [6, 4, 9]
RAND_AUGMENT = "rand-m7-n4-mstd0.5-inc1"


def git_blob_id(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def check_checkout(original: Path) -> None:
    changed = [name for name, blob in ORIGINAL_FILES.items()
               if not (original / name).is_file() or git_blob_id(original / name) != blob]
    if changed:
        sys.exit(f"error: {original} is not a checkout of the original S2D at {ORIGINAL_COMMIT[:7]}: "
                 f"{', '.join(changed)} missing or different")


def import_original(original: Path, packages: Path) -> dict:
    """The original's modules, imported from its checkout with timm from `packages`."""
    sys.path[:0] = [str(packages), str(original)]

    def stub(name, **attributes):
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        sys.modules[name] = module

    for name in ("pytorchvideo", "pytorchvideo.data"):
        stub(name)
    stub("pytorchvideo.transforms", UniformTemporalSubsample=None)
    stub("pytorchvideo.data.encoded_video", EncodedVideo=None)
    stub("numpy.lib.function_base", disp=None)
    stub("tensorboardX", SummaryWriter=None)
    import timm
    if timm.__version__ != TIMM_VERSION or not Path(timm.__file__).is_relative_to(packages):
        sys.exit(f"error: expected timm {TIMM_VERSION} from {packages}, got {timm.__version__} from {timm.__file__}")
    modules = dict(model="model_finetuning", sdl="SDL", utils="utils", mixup="utils.mixup",
                   engine="engine_for_finetuning", run="run_class_finetuning", kinetics="datasets.kinetics",
                   random_erasing="datasets.random_erasing", backbone="landmark.backbone",
                   mobilefacenet="landmark.mobilefacenet")
    return {key: importlib.import_module(name) for key, name in modules.items()}


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@torch.no_grad()
def randomize_(module: torch.nn.Module, seed: int, scale: float = 0.3) -> None:
    """Large random values everywhere, so that every path of the forward matters numerically."""
    generator = torch.Generator().manual_seed(seed)
    for name, tensor in module.state_dict().items():
        if not tensor.is_floating_point():
            continue
        noise = torch.randn(tensor.shape, generator=generator) * scale
        if name.endswith("running_var"):
            tensor.copy_(0.5 + noise.abs())
        elif name.endswith("smooth"):
            tensor.copy_(2.0 + noise.abs())
        elif ("norm" in name or ".bn." in name) and name.endswith("weight"):
            tensor.copy_(1.0 + noise)
        elif name.endswith("running_mean") or "bn" in name or "prelu" in name:
            tensor.copy_(noise)
        elif tensor.dim() > 1 and ("conv" in name or "project" in name):
            tensor.add_(noise * tensor.std())
        else:
            tensor.copy_(noise)


def tiny_original_s2d(original, **overrides):
    config = {**TINY_S2D, **overrides}
    return original["model"].VisionTransformer(
        img_size=config["img_size"], patch_size=config["patch_size"], in_chans_l=config["landmark_channels"],
        num_frames=config["num_frames"], num_classes=config["num_classes"], embed_dim=config["embed_dim"],
        depth=config["depth"], num_heads=config["num_heads"], mlp_ratio=4, qkv_bias=True,
        adapter_scale=config["adapter_scale"], head_dropout_ratio=config.get("head_dropout", 0.5))


def record_outputs(model, names):
    """Forward hooks storing the output of each named module (tuples as lists) into the returned dict."""
    outputs, modules = {}, dict(model.named_modules())

    def hook(name, _module, _inputs, output):
        outputs[name] = [o.detach().clone() for o in output] if isinstance(output, tuple) else output.detach().clone()

    for name in names:
        modules[name].register_forward_hook(partial(hook, name))
    return outputs


def quantized(tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 values, float32 scale): the weights the landmark fixture uses are values * scale, stored in a quarter
    of the bytes."""
    scale = (tensor.abs().max() / 127).clamp(min=1e-12).to(torch.float32)
    return torch.round(tensor / scale).to(torch.int8), scale


@torch.no_grad()
def model_fixture(original):
    """The tiny S2D's logits, feature and intermediates (those of the first clip) on random weights and inputs; the
    original's Landmark on a randomly initialised MobileFaceNet (int8-valued weights, without the layers after
    conv_4 that S2D does not use)."""
    torch.manual_seed(0)
    model = tiny_original_s2d(original).eval()
    randomize_(model, seed=1)
    names = ["patch_embed", "prompt_blocks.0", *(f"blocks.{i}" for i in range(TINY_S2D["depth"])), "ln_post"]
    intermediates = record_outputs(model, names)
    generator = torch.Generator().manual_seed(2)
    frames, size = TINY_S2D["num_frames"], TINY_S2D["img_size"]
    video = torch.randn(2, 3, frames, size, size, generator=generator)
    landmark_feats = torch.randn(2 * frames, TINY_S2D["landmark_channels"], GRID, GRID, generator=generator)
    logits, feature = model(video, landmark_feats)
    first_clip = {name: [o[:frames].clone() for o in output] if isinstance(output, list) else output[:frames].clone()
                  for name, output in intermediates.items()}
    s2d = dict(config=TINY_S2D, state_dict=model.state_dict(), video=video, landmark_feats=landmark_feats,
               logits=logits, feature=feature, first_clip=first_clip)

    torch.manual_seed(3)
    network = original["mobilefacenet"].MobileFaceNet([112, 112], 136)
    randomize_(network, seed=4, scale=0.1)
    used = ("conv1.", "conv2_dw.", "conv_23.", "conv_3.", "conv_34.", "conv_4.")
    stored = {}
    for name, tensor in network.state_dict().items():
        if tensor.is_floating_point():
            values, scale = quantized(tensor)
            tensor.copy_(values.float() * scale)
            if name.startswith(used):
                stored[name] = (values, scale)
    load_model = original["backbone"].load_model
    original["backbone"].load_model = lambda backbone, map_location: network
    try:
        landmark = original["backbone"].Landmark("MobileFaceNet").eval()
    finally:
        original["backbone"].load_model = load_model
    landmark_video = torch.randn(1, 3, 2, size, size, generator=generator)
    landmark_fixture = dict(quantized_state_dict=stored, video=landmark_video, features=landmark(landmark_video))
    return dict(s2d=s2d, landmark=landmark_fixture)


@torch.no_grad()
def sdl_fixture(original):
    cases = []
    for seed, (k, size) in enumerate([(2, 4), (3, 5)]):
        torch.manual_seed(seed)
        sdl = original["sdl"].SDL(num_class=7, dim=32, k=k, size=size)
        queue, probe = sdl.Queue.detach().clone(), sdl.Probe.detach().clone()
        features, logits = torch.randn(6, 32), torch.randn(6, 7) * 2
        labels = torch.tensor([0, 3, 3, 6, 0, 2])
        soft_targets = sdl(features, logits, labels)
        sdl.update(features, logits, labels)
        cases.append(dict(k=k, queue=queue, probe=probe, features=features, logits=logits, labels=labels,
                          soft_targets=soft_targets, queue_after=sdl.Queue.detach().clone(),
                          probe_after=sdl.Probe.detach().clone()))
    return cases


def write_frames(folder: Path, frames) -> None:
    folder.mkdir(parents=True)
    for k, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{k:05d}.png")


def grey_frames(num_frames: int, size: int = 8) -> list[np.ndarray]:
    return [np.full((size, size, 3), FRAME_VALUE["step"] * k + FRAME_VALUE["offset"], np.uint8)
            for k in range(num_frames)]


def frame_of(value: float) -> int:
    return round((round(value) - FRAME_VALUE["offset"]) / FRAME_VALUE["step"])


def shown_frames(video: torch.Tensor) -> list[int]:
    """Frame index of every time step of an original normalised (3, T, H, W) grey-frame video."""
    return [frame_of((x * 0.229 + 0.485) * 255) for x in video[0, :, 0, 0].tolist()]


def write_annotations(path: Path, clip_ids) -> None:
    path.write_text("video_name,label\n" + "".join(f"{clip_id},{i % 7}\n" for i, clip_id in enumerate(clip_ids)))


def original_args(**overrides):
    return Namespace(**{**dict(reprob=0.25, remode="pixel", recount=1, aa=RAND_AUGMENT,
                               train_interpolation="bicubic", num_sample=1, augment=True, data_set="DFEW"),
                        **overrides})


def original_dataset(original, root, mode, clip_len, sampling_rate=1, crop_size=8, short_side=8, segments=2,
                     crops=2, **args):
    return original["kinetics"].VideoClsDatasetFrame(
        anno_path=str(root / "clips.csv"), data_path=str(root), mode=mode, clip_len=clip_len,
        frame_sample_rate=sampling_rate, crop_size=crop_size, short_side_size=short_side,
        test_num_segment=segments, test_num_crop=crops, args=original_args(**args), file_ext="png")


def index_fixture(original, root: Path):
    """Frame indices of train and validation windows (several draws, numpy seeded once) and of every test view,
    for clips of several lengths and sampling rates; clip ids as the original returns them."""
    clip_ids = [f"scene/{n:02d}" for n in INDEX_CLIP_LENGTHS]
    for clip_id, n in zip(clip_ids, INDEX_CLIP_LENGTHS):
        write_frames(root / clip_id, grey_frames(n))
    write_annotations(root / "clips.csv", clip_ids)
    result = dict(clip_ids=clip_ids, lengths=INDEX_CLIP_LENGTHS, frame_value=FRAME_VALUE, clip_len=16,
                  rounds=3, seed=5, train={}, validation={}, test={})
    for rate in (1, 2, 4):
        train = original_dataset(original, root, "train", 16, rate)
        np.random.seed(result["seed"])
        result["train"][rate] = [[frame_of(np.asarray(image)[0, 0, 0]) for image in train.load_video(clip_id)]
                                 for _ in range(result["rounds"]) for clip_id in clip_ids]
        validation = original_dataset(original, root, "validation", 16, rate)
        np.random.seed(result["seed"])
        items = [validation[i] for _ in range(result["rounds"]) for i in range(len(clip_ids))]
        result["validation"][rate] = [shown_frames(video) for video, _, _ in items]
        result["validation_clip_ids"] = [clip_id for _, _, clip_id in items[:len(clip_ids)]]
        for segments, crops in ((2, 2), (3, 2)):  # one segment or crop divides by zero there
            test = original_dataset(original, root, "test", 16, rate, segments=segments, crops=crops)
            result["test"][(rate, segments, crops)] = [
                (clip_id, chunk, split, shown_frames(video))
                for video, _, clip_id, chunk, split in (test[i] for i in range(len(test)))]
    return result


def textured_frames(rng, num_frames: int, height: int = 20, width: int = 16) -> list[np.ndarray]:
    coarse = rng.integers(0, 256, (num_frames, 5, 4, 3), dtype=np.uint8)
    return [np.asarray(Image.fromarray(c).resize((width, height), Image.BICUBIC)) for c in coarse]


def augment_fixture(original, root: Path):
    """Items of the original's train, validation and test datasets on textured 20x16 frames (resized to 16x16),
    python random, numpy and torch seeded once per configuration; erasing masks of its RandomErasing."""
    rng = np.random.default_rng(6)
    clips = [textured_frames(rng, n) for n in AUGMENT_CLIP_LENGTHS]
    clip_ids = [f"clip{i}" for i in range(len(clips))]
    for clip_id, frames in zip(clip_ids, clips):
        write_frames(root / clip_id, frames)
    write_annotations(root / "clips.csv", clip_ids)
    result = dict(frames=[torch.from_numpy(np.stack(frames)) for frames in clips], clip_ids=clip_ids,
                  clip_len=4, input_size=12, short_side=16, rounds=4, seed=7, train=[])
    configs = [dict(reprob=0.5, remode="pixel", recount=1, aa=RAND_AUGMENT),
               dict(reprob=1.0, remode="rand", recount=2, aa="rand-m9-n2-mstd0.5-inc1", train_interpolation="bilinear")]
    for config in configs:
        dataset = original_dataset(original, root, "train", 4, crop_size=12, short_side=16, **config)
        seed_all(result["seed"])
        videos = [dataset[i][0] for _ in range(result["rounds"]) for i in range(len(clips))]
        result["train"].append(dict(config=config, videos=torch.stack(videos)))
    validation = original_dataset(original, root, "validation", 4, crop_size=12, short_side=16)
    seed_all(result["seed"])
    result["validation"] = torch.stack([validation[i][0] for i in range(len(clips))])
    test = original_dataset(original, root, "test", 4, crop_size=16, short_side=16, segments=2, crops=2)
    items = [test[i] for i in range(len(test))]
    result["test"] = torch.stack([video for video, _, _, _, crop in items if crop == 0])  # crop 1 is the same
    return result


def erasing_fixture(original, draws: int = 60, kept: int = 6):
    """Masks (erased pixels) of `draws` calls of the original's RandomErasing on a constant (4, 3, 10, 10) clip,
    and the first `kept` outputs in full; python random and torch seeded once per configuration."""
    cases = []
    for probability, mode, count in ((0.25, "pixel", 1), (0.5, "rand", 1), (0.5, "const", 1), (1.0, "pixel", 2)):
        erase = original["random_erasing"].RandomErasing(probability, mode=mode, max_count=count, num_splits=count,
                                                         device="cpu")
        random.seed(8)
        torch.manual_seed(8)
        outputs = [erase(torch.full((4, 3, 10, 10), 5.0)) for _ in range(draws)]
        cases.append(dict(probability=probability, mode=mode, count=count, seed=8,
                          masks=torch.stack([(output != 5.0).any(dim=1) for output in outputs]),
                          outputs=torch.stack(outputs[:kept])))
    return cases


def mixup_fixture(original):
    """Batches mixed by the original's Mixup (mode batch and elem, and a min-max CutMix box), numpy seeded once per
    case; the default mixup and cutmix alphas, switch probability and label smoothing."""
    generator = torch.Generator().manual_seed(9)
    videos, targets = torch.randn(4, 3, 2, 6, 6, generator=generator), torch.tensor([0, 3, 5, 1])
    cases = []
    for mode, minmax in (("batch", None), ("elem", None), ("batch", (0.2, 0.8))):
        mixup = original["mixup"].Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, cutmix_minmax=minmax, prob=1.0,
                                        switch_prob=0.5, mode=mode, label_smoothing=0.1, num_classes=7)
        np.random.seed(10)
        mixed = [mixup(videos.clone(), targets) for _ in range(8)]
        cases.append(dict(mode=mode, cutmix_minmax=minmax, seed=10, mixed=torch.stack([m[0] for m in mixed]),
                          targets=torch.stack([m[1] for m in mixed])))
    return dict(videos=videos, targets=targets, cases=cases)


def main_statements(path: Path, prefixes: tuple[str, ...]):
    """The top-level statements of run_class_finetuning.main whose source starts with one of `prefixes`, in file
    order, compiled (every prefix must match)."""
    source = path.read_text()
    main = next(node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef) and node.name == "main")
    chosen = [stmt for stmt in main.body if ast.get_source_segment(source, stmt).startswith(prefixes)]
    missing = [prefix for prefix in prefixes
               if not any(ast.get_source_segment(source, stmt).startswith(prefix) for stmt in chosen)]
    if missing:
        sys.exit(f"error: {path}: no statement of main() starts with {missing}")
    return compile(ast.Module(body=chosen, type_ignores=[]), str(path), "exec")


SETUP_STATEMENTS = (  # run_class_finetuning.main, from the loss and the freezing to the optimizer and schedules
    "mixup_fn = None", "mixup_active =", "if mixup_active:", "sdl=None", "if args.sdl:",
    "for name, param in model.named_parameters():", "model_without_ddp = model", "total_batch_size =",
    "num_training_steps_per_epoch =", "args.lr =", "args.min_lr =", "if args.layer_decay < 1.0:",
    "skip_weight_decay_list =", "if args.enable_deepspeed:", "lr_schedule_values =",
    "if args.weight_decay_end is None:", "wd_schedule_values =", "if mixup_fn is not None and not args.ban_mixup:",
    "sdl_loss_fn=None", "criterion = {")
LAYER_DECAY_STATEMENTS = ("model_without_ddp = model", "if args.layer_decay < 1.0:", "skip_weight_decay_list =",
                          "if args.enable_deepspeed:")
TRAINING_ARGS = dict(batch_size=4, update_freq=1, lr=1e-3, min_lr=1e-6, warmup_lr=1e-7, warmup_epochs=1,
                     warmup_steps=-1, weight_decay=0.05, weight_decay_end=None, layer_decay=1.0, opt="adamw",
                     opt_eps=1e-8, opt_betas=[0.9, 0.999], momentum=0.9, clip_grad=None, smoothing=0.1, mixup=0.8,
                     cutmix=1.0, cutmix_minmax=None, mixup_prob=1.0, mixup_switch_prob=0.5, mixup_mode="batch",
                     ban_mixup=False, sdl=False, K=2, qs=4, sdl_update_freq=50, fix_lgp=False, nb_classes=7,
                     enable_deepspeed=False, distributed=False, epochs=4)
TRAINING_RUNS = {
    # the DFEW/MAFW recipe's loss (mixup, cutmix, label smoothing), gradient accumulation, a cosine weight decay
    "mixup": dict(update_freq=2, weight_decay_end=0.1, epoch=1, steps=3),
    # the FERV39K recipe's loss (SDL, no mixup, no smoothing) in an epoch where the SDL term counts and the queues
    # are refreshed; layer-wise lr decay, gradient clipping, the landmark-guided prompters frozen
    "sdl": dict(sdl=True, ban_mixup=True, smoothing=0.0, sdl_update_freq=10, epochs=40, epoch=30, steps=2,
                layer_decay=0.75, clip_grad=0.5, fix_lgp=True, warmup_steps=5),
}


def landmark_stand_in(video: torch.Tensor) -> torch.Tensor:
    """The frozen landmark network of the training fixtures: the frames themselves (14x14, 3 channels), squared so
    that they are not a linear function of the input."""
    return video.permute(0, 2, 1, 3, 4).flatten(0, 1).square()


TRAINING_MODEL = dict(num_frames=2, landmark_channels=3, head_dropout=0.0)


def training_model(original):
    """The tiny S2D of the training fixtures, float16-valued random weights (stored as float16)."""
    torch.manual_seed(11)
    model = tiny_original_s2d(original, **TRAINING_MODEL)
    randomize_(model, seed=12, scale=0.1)
    for tensor in model.state_dict().values():
        tensor.copy_(tensor.half().float())
    # the original's model has no get_num_layers, so --layer_decay < 1 stops it; VideoMAE's returns len(blocks)
    model.get_num_layers = lambda: len(model.blocks)
    return model


def run_main_statements(original, prefixes, args, model, **names):
    """Execute the statements of run_class_finetuning.main starting with `prefixes`; returns their namespace."""
    namespace = {**vars(original["run"]), "args": args, "model": model, "device": torch.device("cpu"),
                 "SDL": partial(original["sdl"].SDL, dim=TINY_S2D["embed_dim"]), **names}
    exec(main_statements(Path(original["run"].__file__), prefixes), namespace)
    return namespace


def parameter_groups(optimizer, model):
    names = {id(p): n for n, p in model.named_parameters()}
    return [dict(names=sorted(names[id(p)] for p in group["params"]), lr_scale=float(group["lr_scale"]),
                 weight_decay=float(group["weight_decay"])) for group in optimizer.param_groups]


def training_run(original, run):
    """One epoch of the original's train_one_epoch, set up by the statements of its main(): per-step group lr and
    weight decay, per-step loss, the schedules, the parameter groups, the weights (and SDL queues) after."""
    run = dict(run)
    epoch, steps = run.pop("epoch"), run.pop("steps")
    args = Namespace(**{**TRAINING_ARGS, **run})
    given_args = dict(vars(args))  # main() scales lr and min_lr in place
    model = training_model(original)
    total = args.batch_size * args.update_freq
    generator = torch.Generator().manual_seed(13)
    videos = torch.randn(steps * total, 3, TRAINING_MODEL["num_frames"], GRID, GRID, generator=generator).half()
    labels = torch.randint(0, 7, (steps * total,), generator=generator)
    dataset = torch.utils.data.TensorDataset(videos.float(), labels, torch.arange(len(videos)))
    namespace = run_main_statements(original, SETUP_STATEMENTS, args, model, dataset_train=dataset)
    optimizer, criterion, sdl = namespace["optimizer"], namespace["criterion"], namespace["sdl"]
    groups = parameter_groups(optimizer, model)  # as created (the loop sets the weight decay of each step)
    per_step = []
    optimizer.register_step_pre_hook(
        lambda opt, *_: per_step.append([(float(g["lr"]), float(g["weight_decay"])) for g in opt.param_groups]))
    losses = []  # the criterion's value at every step (the loop changes the returned tensor in place later)

    def recorded(output, target, loss_function=criterion["criterion"]):
        loss = loss_function(output, target)
        losses.append(loss.item())
        return loss

    criterion["criterion"] = recorded
    sdl_start = None if sdl is None else (sdl.Queue.detach().clone(), sdl.Probe.detach().clone())
    seed_all(14)
    steps_per_epoch = namespace["num_training_steps_per_epoch"]
    original["engine"].train_one_epoch(
        model, landmark_stand_in, sdl, criterion, torch.utils.data.DataLoader(dataset, batch_size=args.batch_size),
        optimizer, torch.device("cpu"), epoch, namespace["loss_scaler"], args.clip_grad, None, namespace["mixup_fn"],
        log_writer=None, start_steps=epoch * steps_per_epoch, lr_schedule_values=namespace["lr_schedule_values"],
        wd_schedule_values=namespace["wd_schedule_values"], num_training_steps_per_epoch=steps_per_epoch,
        update_freq=args.update_freq, sdl_update_freq=args.sdl_update_freq)
    return dict(args=given_args, epoch=epoch, seed=14, videos=videos, labels=labels,
                lr_schedule=torch.from_numpy(np.asarray(namespace["lr_schedule_values"])),
                wd_schedule=torch.from_numpy(np.asarray(namespace["wd_schedule_values"])),
                groups=groups, per_step=per_step, losses=losses,
                trained={n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad},
                sdl_start=sdl_start,
                sdl_end=None if sdl is None else (sdl.Queue.detach().clone(), sdl.Probe.detach().clone()))


def training_fixture(original):
    # on the CPU: the gradient scaler scales on the CPU (by a power of two: the gradients stay exact) and the loop's
    # synchronisation has nothing to wait for
    torch.cuda.amp.GradScaler = partial(torch.amp.GradScaler, "cpu")
    torch.cuda.synchronize = lambda *_, **__: None
    model = training_model(original)
    runs = {name: training_run(original, run) for name, run in TRAINING_RUNS.items()}
    # the groups of layer-wise lr decay when every parameter trains (the fine-tuning freezing leaves only
    # parameters of the last layer group)
    args = Namespace(**{**TRAINING_ARGS, "layer_decay": 0.75})
    namespace = run_main_statements(original, LAYER_DECAY_STATEMENTS, args, model)
    return dict(model_config=TRAINING_MODEL, start_state_dict={k: v.half() for k, v in model.state_dict().items()},
                runs=runs, all_trainable_groups=parameter_groups(namespace["optimizer"], model),
                all_trainable_args=dict(vars(args)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original", required=True, type=Path, help="checkout of the original S2D at e1b5e5d")
    parser.add_argument("--packages", required=True, type=Path,
                        help=f"folder holding timm {TIMM_VERSION} (pip install --no-deps --target FOLDER)")
    parser.add_argument("--output", default=OUTPUT, type=Path)
    args = parser.parse_args()
    check_checkout(args.original.resolve())
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    quiet = contextlib.redirect_stdout(io.StringIO())
    with quiet:
        original = import_original(args.original.resolve(), args.packages.resolve())
    fixtures = {"model": model_fixture(original), "sdl": sdl_fixture(original), "mixup": mixup_fixture(original),
                "erasing": erasing_fixture(original)}
    with tempfile.TemporaryDirectory() as folder:
        fixtures["indices"] = index_fixture(original, Path(folder) / "indices")
        fixtures["augment"] = augment_fixture(original, Path(folder) / "augment")
    with quiet:
        fixtures["training"] = training_fixture(original)
    args.output.mkdir(parents=True, exist_ok=True)
    for name, fixture in fixtures.items():
        torch.save(fixture, args.output / f"{name}.pt")
    import PIL
    import timm
    manifest = dict(original_commit=ORIGINAL_COMMIT, original_files=ORIGINAL_FILES,
                    versions=dict(timm=timm.__version__, torch=torch.__version__, numpy=np.__version__,
                                  pillow=PIL.__version__, python=sys.version.split()[0]),
                    command="python scripts/parity/make_fixtures.py --original PATH --packages PATH")
    (args.output / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for path in sorted(args.output.iterdir()):
        print(f"{path.stat().st_size / 1024:8.1f} KiB  {path}")


if __name__ == "__main__":
    main()
