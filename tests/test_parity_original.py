"""The project against what the ORIGINAL S2D code computed on the same inputs and seeds (tests/data/parity/, written
by scripts/parity/make_fixtures.py from the original at commit e1b5e5d; docs/DIFFERENCES.md, "How we know"). No
original code is needed here. Model outputs agree within 1e-5 of their largest value (float32); frame indices,
erasing masks, augmented clips and mixed batches are equal."""
import io
import json
import random
import re
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import main_finetune
from datasets import VideoClsDataset, VideoMixup
from datasets.random_erasing import ClipRandomErasing
from datasets.sampling import train_frame_indices
from engine.sdl import SDL
from engine.train import train_one_epoch
from models.fast_paths import EQUAL_SPEEDUPS, prepare_for_speed
from models.freezing import freeze_for_finetuning
from models.landmark import LandmarkFeatures
from models.s2d import S2D
from tests.helpers import ROOT
from utils.progress import ProgressLogger

FIXTURES = ROOT / "tests" / "data" / "parity"
MEAN, STD = 0.485, 0.229  # ImageNet mean and std of the red channel


def load(name):
    return torch.load(FIXTURES / f"{name}.pt", weights_only=True)


def seed_all(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def assert_close(actual, expected, tolerance=1e-5):
    """Every element within `tolerance` times the largest magnitude of `expected`."""
    assert actual.shape == expected.shape
    error = (actual - expected).abs().max().item()
    assert error <= tolerance * expected.abs().max().item(), f"max error {error}, scale {expected.abs().max()}"


def test_fixtures_come_from_the_commit_the_docs_name():
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    differences = (ROOT / "docs" / "DIFFERENCES.md").read_text()
    assert manifest["original_commit"].startswith(re.search(r"commit `([0-9a-f]{7,})`", differences).group(1))
    assert sorted(path.name for path in FIXTURES.glob("*.pt")) == sorted(
        f"{name}.pt" for name in ("model", "sdl", "mixup", "erasing", "indices", "augment", "training"))


def tiny_s2d(config, **overrides):
    return S2D(img_size=config["img_size"], patch_size=config["patch_size"], embed_dim=config["embed_dim"],
               depth=config["depth"], num_heads=config["num_heads"], num_frames=config["num_frames"],
               num_classes=config["num_classes"], landmark_channels=config["landmark_channels"],
               adapter_ratio=config["adapter_scale"], **overrides)


@pytest.mark.parametrize("speedups", [(), EQUAL_SPEEDUPS], ids=["reference", "speedups"])
@torch.no_grad()
def test_s2d_and_its_intermediates_match_the_original(speedups):
    fixture = load("model")["s2d"]
    model = tiny_s2d(fixture["config"]).eval()
    model.load_state_dict(fixture["state_dict"])
    prepare_for_speed(model, LandmarkFeatures(None), speedups=speedups)
    modules, seen = dict(model.named_modules()), {}
    for name in fixture["first_clip"]:
        modules[name].register_forward_hook(lambda module, inputs, output, name=name: seen.setdefault(name, output))
    logits, feature = model(fixture["video"], fixture["landmark_feats"])
    assert_close(logits, fixture["logits"])
    assert_close(feature, fixture["feature"])
    frames = fixture["config"]["num_frames"]
    for name, expected in fixture["first_clip"].items():
        outputs = seen[name] if isinstance(expected, list) else [seen[name]]
        for output, reference in zip(outputs, expected if isinstance(expected, list) else [expected]):
            assert_close(output[:frames], reference)


@pytest.mark.parametrize("speedups", [(), EQUAL_SPEEDUPS], ids=["reference", "speedups"])
@torch.no_grad()
def test_landmark_features_match_the_original(speedups):
    fixture = load("model")["landmark"]
    landmark = LandmarkFeatures(None)
    weights = {name: values.float() * scale for name, (values, scale) in fixture["quantized_state_dict"].items()}
    missing = landmark.net.load_state_dict(weights, strict=False).missing_keys
    assert {name.split(".")[0] for name in missing} == {"conv_45", "conv_5", "conv_6_sep", "output_layer"}
    prepare_for_speed(tiny_s2d(load("model")["s2d"]["config"]), landmark, speedups=speedups)
    assert_close(landmark(fixture["video"]), fixture["features"])


@torch.no_grad()
def test_sdl_soft_targets_and_queue_update_match_the_original():
    for case in load("sdl"):
        sdl = SDL(num_classes=7, dim=32, k=case["k"], queue_size=case["queue"].shape[1])
        sdl.queue.copy_(case["queue"])
        sdl.probe.copy_(case["probe"])
        assert_close(sdl.soft_targets(case["features"]), case["soft_targets"])
        sdl.update(case["features"], case["logits"], case["labels"])
        assert torch.equal(sdl.queue, case["queue_after"]) and torch.equal(sdl.probe, case["probe_after"])


def test_mixup_and_cutmix_match_the_original():
    fixture = load("mixup")
    for case in fixture["cases"]:
        mixup = VideoMixup(mixup_alpha=0.8, cutmix_alpha=1.0, cutmix_minmax=case["cutmix_minmax"], prob=1.0,
                           switch_prob=0.5, mode=case["mode"], label_smoothing=0.1, num_classes=7)
        np.random.seed(case["seed"])
        for expected_video, expected_target in zip(case["mixed"], case["targets"]):
            video, target = mixup(fixture["videos"].clone(), fixture["targets"])
            assert torch.equal(video, expected_video) and torch.equal(target, expected_target)


def test_clip_erasing_matches_the_original_masks_and_noise():
    for case in load("erasing"):
        erase = ClipRandomErasing(case["probability"], mode=case["mode"], max_count=case["count"])
        random.seed(case["seed"])
        torch.manual_seed(case["seed"])
        outputs = [erase(torch.full((4, 3, 10, 10), 5.0)) for _ in range(len(case["masks"]))]
        assert torch.equal(torch.stack([(output != 5.0).any(dim=1) for output in outputs]), case["masks"])
        assert torch.equal(torch.stack(outputs[:len(case["outputs"])]), case["outputs"])


def write_clips(root: Path, clip_ids, clips):
    for clip_id, frames in zip(clip_ids, clips):
        (root / clip_id).mkdir(parents=True)
        for k, frame in enumerate(frames):
            Image.fromarray(frame).save(root / clip_id / f"{k:05d}.png")
    csv_path = root / "clips.csv"
    csv_path.write_text("video_name,label\n" + "".join(f"{clip_id},{i % 7}\n" for i, clip_id in enumerate(clip_ids)))
    return csv_path


def dataset(root, csv_path, mode, **options):
    return VideoClsDataset(str(csv_path), str(root), mode, 7, (".png",), **options)


def test_frame_indices_of_train_validation_and_test_windows_match_the_original(tmp_path):
    fixture = load("indices")
    value = fixture["frame_value"]
    grey = [[np.full((8, 8, 3), value["step"] * k + value["offset"], np.uint8) for k in range(n)]
            for n in fixture["lengths"]]
    csv_path = write_clips(tmp_path, fixture["clip_ids"], grey)

    def shown(video):
        return [round((round((x * STD + MEAN) * 255) - value["offset"]) / value["step"])
                for x in video[0, :, 0, 0].tolist()]

    rounds, clip_len = fixture["rounds"], fixture["clip_len"]
    options = dict(clip_len=clip_len, input_size=8, short_side_size=8)
    for rate, expected in fixture["train"].items():
        np.random.seed(fixture["seed"])
        assert [train_frame_indices(n, clip_len, rate).tolist()
                for _ in range(rounds) for n in fixture["lengths"]] == expected
    for rate, expected in fixture["validation"].items():
        validation = dataset(tmp_path, csv_path, "validation", sampling_rate=rate, **options)
        np.random.seed(fixture["seed"])
        items = [validation[i] for _ in range(rounds) for i in range(len(validation.clips))]
        assert [shown(video) for video, _, _ in items] == expected
        assert [clip_id for _, _, clip_id in items[:len(fixture["clip_ids"])]] == fixture["validation_clip_ids"]
    for (rate, segments, crops), expected in fixture["test"].items():
        test = dataset(tmp_path, csv_path, "test", sampling_rate=rate, test_num_segment=segments,
                       test_num_crop=crops, **options)
        assert [(clip_id, segment, crop, shown(video))
                for video, _, clip_id, segment, crop in (test[i] for i in range(len(test)))] == expected


def test_training_augmentation_with_the_same_seeds_equals_the_original(tmp_path):
    """Frame window, resize, RandAugment, crop, flip and clip erasing: the same clips from the same seeds."""
    fixture = load("augment")
    csv_path = write_clips(tmp_path, fixture["clip_ids"], [frames.numpy() for frames in fixture["frames"]])
    options = dict(clip_len=fixture["clip_len"], input_size=fixture["input_size"],
                   short_side_size=fixture["short_side"])
    for case in fixture["train"]:
        config = case["config"]
        train = dataset(tmp_path, csv_path, "train", num_sample=1, aa=config["aa"], reprob=config["reprob"],
                        remode=config["remode"], recount=config["recount"],
                        train_interpolation=config.get("train_interpolation", "bicubic"), **options)
        seed_all(fixture["seed"])
        videos = [train[i][0] for _ in range(fixture["rounds"]) for i in range(len(train))]
        assert torch.equal(torch.stack(videos), case["videos"])
    validation = dataset(tmp_path, csv_path, "validation", **options)
    seed_all(fixture["seed"])
    assert torch.equal(torch.stack([validation[i][0] for i in range(len(validation))]), fixture["validation"])
    options["input_size"] = fixture["short_side"]
    test = dataset(tmp_path, csv_path, "test", test_num_segment=2, test_num_crop=2, **options)
    items = [test[i] for i in range(len(test))]
    assert torch.equal(torch.stack([video for video, *_, crop in items if crop == 0]), fixture["test"])


def landmark_stand_in(video):
    """The fixtures' frozen landmark network: the 14x14 frames, squared."""
    return video.permute(0, 2, 1, 3, 4).flatten(0, 1).square()


def training_setup(fixture, given, trainable_only=True):
    """main_finetune's criterion, optimizer and schedules for the fixture's tiny model and arguments."""
    model = tiny_s2d({**load("model")["s2d"]["config"], "landmark_channels": 3, "num_frames": 2},
                     head_dropout=fixture["model_config"]["head_dropout"])
    model.load_state_dict({name: value.float() for name, value in fixture["start_state_dict"].items()})
    if trainable_only:
        freeze_for_finetuning(model, fix_lgp=given["fix_lgp"])
    args = main_finetune.get_args_parser().parse_args([])
    for name in ("batch_size", "update_freq", "lr", "min_lr", "warmup_epochs", "warmup_steps", "weight_decay",
                 "weight_decay_end", "layer_decay", "opt", "opt_eps", "opt_betas", "momentum", "clip_grad",
                 "smoothing", "mixup", "cutmix", "cutmix_minmax", "mixup_prob", "mixup_switch_prob", "mixup_mode",
                 "ban_mixup", "sdl", "K", "qs", "sdl_update_freq", "epochs", "nb_classes"):
        setattr(args, name, given[name])
    args.resume, args.output_dir = "", ""
    return model, args


def named_groups(optimizer, model):
    names = {id(p): n for n, p in model.named_parameters()}
    return {tuple(sorted(names[id(p)] for p in group["params"])): (group.get("lr_scale", 1.0), group["weight_decay"])
            for group in optimizer.param_groups}


def fixture_groups(groups):
    return {tuple(group["names"]): (group["lr_scale"], group["weight_decay"]) for group in groups}


@pytest.mark.parametrize("run_name", [pytest.param("mixup", marks=pytest.mark.slow), "sdl"])
def test_one_training_epoch_matches_the_original(run_name):
    """Freezing, lr scaling, parameter groups, lr and weight-decay schedules, per-step group lr and weight decay,
    mixup, SDL, accumulation and clipping: the losses, the weights and the SDL queues after one epoch."""
    fixture = load("training")
    run = fixture["runs"][run_name]
    model, args = training_setup(fixture, run["args"])
    dataset_ = torch.utils.data.TensorDataset(run["videos"].float(), run["labels"], torch.arange(len(run["labels"])))
    loader = torch.utils.data.DataLoader(dataset_, batch_size=args.batch_size)
    sdl = None
    if args.sdl:
        sdl = SDL(args.nb_classes, model.embed_dim, k=args.K, queue_size=args.qs)
        sdl.queue.copy_(run["sdl_start"][0])
        sdl.probe.copy_(run["sdl_start"][1])
    models = main_finetune.Models(model, model, landmark_stand_in, sdl, None)
    training = main_finetune.build_training(args, models, loader, None, None)
    np.testing.assert_allclose(training.lr_schedule, run["lr_schedule"].numpy(), rtol=1e-12)
    np.testing.assert_allclose(training.wd_schedule, run["wd_schedule"].numpy(), rtol=1e-12)
    assert named_groups(training.optimizer, model) == fixture_groups(run["groups"])
    per_step = []
    training.optimizer.register_step_pre_hook(lambda optimizer, *_: per_step.append(
        {names: (group["lr"], group["weight_decay"]) for names, group in zip(
            named_groups(optimizer, model), optimizer.param_groups)}))
    criterion, mixup_fn = main_finetune.build_criterion(args)
    losses = []

    def recorded(logits, targets):
        losses.append(criterion(logits, targets).item())
        return criterion(logits, targets)

    seed_all(run["seed"])
    train_one_epoch(model, landmark_stand_in, recorded, loader, training.optimizer, torch.device("cpu"), run["epoch"],
                    steps_per_epoch=training.steps_per_epoch, update_freq=args.update_freq,
                    lr_schedule=training.lr_schedule, wd_schedule=training.wd_schedule, clip_grad=args.clip_grad,
                    mixup_fn=mixup_fn, sdl=sdl, sdl_update_freq=args.sdl_update_freq,
                    progress=ProgressLogger("test", stream=io.StringIO()))
    groups = [tuple(group["names"]) for group in run["groups"]]
    assert per_step == [dict(zip(groups, step)) for step in run["per_step"]]
    np.testing.assert_allclose(losses, run["losses"], rtol=1e-5)
    trained = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    assert trained.keys() == run["trained"].keys()
    for name, weights in trained.items():
        assert_close(weights, run["trained"][name])
    if sdl is not None:
        assert_close(sdl.queue, run["sdl_end"][0])
        assert_close(sdl.probe, run["sdl_end"][1])


def test_layer_decay_groups_match_the_original_when_every_parameter_trains():
    fixture = load("training")
    model, args = training_setup(fixture, fixture["all_trainable_args"], trainable_only=False)
    dataset_ = torch.utils.data.TensorDataset(torch.zeros(8))
    training = main_finetune.build_training(args, main_finetune.Models(model, model, None, None, None),
                                            Namespace(dataset=dataset_), None, None)
    expected = fixture_groups(fixture["all_trainable_groups"])
    actual = named_groups(training.optimizer, model)
    assert len(expected) > 2 and actual.keys() == expected.keys()
    for names, (scale, decay) in expected.items():
        assert actual[names] == (pytest.approx(scale, rel=1e-12), decay)
