"""Speed paths run on the CPU: fused attention, bf16/fp16 autocast with the engine, channels-last
landmark network, torch.compile wiring, int8 quantization."""
import copy
import functools

import numpy as np
import pytest
import torch
from timm.layers import Attention
from torch.utils.data import DataLoader

from engine.evaluate import evaluate
from engine.train import train_one_epoch
from models.fast_paths import prepare_for_speed
from models.landmark import LandmarkFeatures
from models.quantize import int8_engine, quantize_int8
from tests.helpers import tiny_model
from utils.progress import ProgressLogger

CPU = torch.device("cpu")


tiny = functools.partial(tiny_model, "s2d_tiny_patch8_112", num_frames=2, num_classes=3, head_dropout=0.0)


def clips(n, frames=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(3, frames, 112, 112, generator=generator), i % 3, f"clip{i}") for i in range(n)]


def test_every_attention_uses_fused_sdpa():
    model = tiny()
    attentions = [m for m in model.modules() if isinstance(m, Attention)]
    assert len(attentions) == 2 * model.num_layers  # the ViT blocks' and the temporal adapters'
    assert all(a.fused_attn for a in attentions)


def _train_step(model, amp_dtype, scaler=None):
    loader = DataLoader([(video, label, i) for i, (video, label, _) in enumerate(clips(2))], batch_size=2)
    progress = ProgressLogger("test")
    train_one_epoch(model, LandmarkFeatures(None), torch.nn.functional.cross_entropy, loader,
                    torch.optim.AdamW(model.parameters(), lr=1e-3), CPU, 0, steps_per_epoch=1, update_freq=1,
                    lr_schedule=[1e-3], wd_schedule=[0.05], scaler=scaler, amp_dtype=amp_dtype, progress=progress)
    return progress


@pytest.mark.slow
@pytest.mark.parametrize("amp_dtype, scaler", [(torch.bfloat16, None), (torch.float16, "cpu")])
def test_autocast_training_step_updates_the_weights(amp_dtype, scaler):
    """The CUDA paths (bf16 autocast by default; fp16 with a gradient scaler on request) run on the CPU."""
    model = tiny(depth=1)  # low-precision autocast is emulated (slow) on this CPU
    before = copy.deepcopy(model.state_dict())
    progress = _train_step(model, amp_dtype, torch.amp.GradScaler(scaler, init_scale=16.0) if scaler else None)
    assert torch.isfinite(torch.tensor(progress.meters["loss"].global_avg))
    if scaler:  # no overflow at this scale, so the scaled step was taken and the scale kept
        assert progress.meters["loss_scale"].global_avg == 16.0 and progress.meters["grad_norm"].global_avg < 1e3
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert "head.fc_cls.weight" in changed and "prompt_blocks.0.TMA.T_Adapter.attn.qkv.weight" in changed


@pytest.mark.slow
def test_bf16_autocast_evaluation_is_close_to_float32():
    model, landmark = tiny(depth=1), LandmarkFeatures(None)
    loader = DataLoader(clips(3), batch_size=3)
    _, (_, _, fp32), *_ = evaluate(model, landmark, loader, CPU, 3)
    _, (_, _, bf16), bf16_records, _ = evaluate(model, landmark, loader, CPU, 3, amp_dtype=torch.bfloat16)
    assert all(r[3].dtype == np.float32 for r in bf16_records)
    assert abs(fp32 - bf16).max() < 0.05 and not (fp32 == bf16).all()
    assert (fp32.argmax(1) == bf16.argmax(1)).all()


def test_channels_last_landmark_network_gives_the_same_features():
    landmark = LandmarkFeatures(None)
    video = torch.randn(2, 3, 2, 112, 112)
    expected = landmark(video)
    prepare_for_speed(tiny(), landmark, channels_last=True)
    conv = next(m for m in landmark.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(landmark(video), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_compiled_model_runs_and_keeps_names_and_checkpoints(tmp_path):
    """--compile's wiring (nn.Module.compile of both modules) run through dynamo; the 'eager' backend stands in for
    inductor, whose code generation takes minutes on 2 CPU cores."""
    model, landmark = tiny(depth=1).eval(), LandmarkFeatures(None)
    reference = copy.deepcopy(model)
    video = torch.randn(1, 3, 2, 112, 112)
    prepare_for_speed(model, landmark, compile=True, compile_options={"backend": "eager"})
    with torch.no_grad():
        logits, feature = model(video, landmark(video))
        expected_logits, expected_feature = reference(video, LandmarkFeatures(None)(video))
    torch.testing.assert_close(logits, expected_logits)
    torch.testing.assert_close(feature, expected_feature)
    assert list(model.state_dict()) == list(reference.state_dict()) and type(model).__name__ == "S2D"
    torch.save(model.state_dict(), tmp_path / "compiled.pth")
    restored = tiny(depth=1)
    restored.load_state_dict(torch.load(tmp_path / "compiled.pth"))  # strict: the same names
    assert all(torch.equal(a, b) for a, b in zip(restored.state_dict().values(), model.state_dict().values()))


def test_model_traces_with_dynamo_to_the_same_output():
    """What --compile relies on (the inductor code generation itself takes minutes on 2 CPU cores)."""
    model, landmark = tiny(depth=1).eval(), LandmarkFeatures(None)
    video = torch.randn(1, 3, 2, 112, 112)
    with torch.no_grad():
        expected = model(video, landmark(video))[0]
        compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
        torch.testing.assert_close(compiled(video, landmark(video))[0], expected)


def test_int8_quantizes_every_linear_and_keeps_predictions():
    model, landmark = tiny(num_classes=7, depth=2).eval(), LandmarkFeatures(None)
    quantized = quantize_int8(model)
    linears = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    dynamic = [m for m in quantized.modules() if type(m).__module__.startswith("torch.ao.nn.quantized.dynamic")]
    assert len(dynamic) == linears > 0 and not any(type(m) is torch.nn.Linear for m in quantized.modules())
    assert all(type(m) is torch.nn.Linear for m in model.modules() if isinstance(m, torch.nn.Linear))  # a copy
    loader = DataLoader(clips(8), batch_size=4)
    _, (_, _, fp32), *_ = evaluate(model, landmark, loader, CPU, 7)
    _, (_, _, int8), *_ = evaluate(quantized, landmark, loader, CPU, 7)
    assert abs(fp32 - int8).max() < 0.05 and not (fp32 == int8).all()
    assert (fp32.argmax(1) == int8.argmax(1)).mean() >= 0.75


def test_int8_keeps_the_linear_layers_asked_for_in_float32():
    model = tiny(depth=2).eval()
    quantized = quantize_int8(model, keep_float=r"mlp\.fc2")
    kept = {name for name, m in quantized.named_modules() if type(m) is torch.nn.Linear}
    assert kept == {"blocks.0.mlp.fc2", "blocks.1.mlp.fc2"}
    for name, module in quantized.named_modules():
        if name in kept:
            assert torch.equal(module.weight, model.get_submodule(name).weight)
    assert sum(type(m).__module__.startswith("torch.ao.nn.quantized.dynamic") for m in quantized.modules()) == \
        sum(isinstance(m, torch.nn.Linear) for m in model.modules()) - 2


def test_int8_packs_for_onednn_and_leaves_the_process_engine_alone(monkeypatch):
    """oneDNN's kernels are the faster ones measured here; the process-wide engine must not change."""
    seen = []
    original = torch.ao.quantization.quantize_dynamic
    monkeypatch.setattr(torch.ao.quantization, "quantize_dynamic",
                        lambda *a, **k: seen.append(torch.backends.quantized.engine) or original(*a, **k))
    before = torch.backends.quantized.engine
    quantize_int8(tiny(depth=1).eval())
    assert torch.backends.quantized.engine == before
    expected = "onednn" if "onednn" in torch.backends.quantized.supported_engines else before
    assert seen == [expected] == [int8_engine()]


def test_benchmark_times_int8_pairs_and_prints_their_median(monkeypatch):
    """Each pair times one fp32 forward, then one int8 forward of the case's models (a clock that the forwards
    advance: 2 s for fp32, 1 s for int8)."""
    from benchmarks import benchmark
    from benchmarks.benchmark import int8_pairs, ratios
    clock, calls, build_case = [0.0], [], benchmark.build_case

    def timed_case(case):
        modules, forward, size = build_case(case)

        def timed(video):
            calls.append(case["precision"])
            clock[0] += {"fp32": 2.0, "int8": 1.0}[case["precision"]]
            return forward(video)
        return modules, timed, size

    monkeypatch.setattr(benchmark, "build_case", timed_case)
    monkeypatch.setattr(benchmark.time, "perf_counter", lambda: clock[0])
    pairs = int8_pairs(dict(model="s2d_tiny_patch8_112", compile=False, frames=2, batch=1, device="cpu", pairs=2))
    assert pairs == [(2.0, 1.0), (2.0, 1.0)] and calls == ["fp32", "int8"] * 3  # a warm-up, then the pairs
    line, = ratios([], None, [(2.0, 1.0), (6.0, 2.0), (3.0, 1.0), (5.0, 1.0)])
    assert line.endswith("4 alternating pairs in one process: median 3.00x (range 2.00-5.00x)")
