"""The opt-in GPU speed-ups (models.fast_paths, models.cuda_graph) give the default model's outputs and gradients."""
import pytest
import torch

from models.cuda_graph import CudaGraphInference
from models.fast_paths import compile_layers, fold_landmark_batchnorm, prepare_for_speed, use_lean_layout
from models.freezing import freeze_for_finetuning
from models.landmark import LandmarkFeatures
from tests.helpers import tiny_model

TIGHT = dict(rtol=1e-5, atol=1e-6)


def tiny(depth=2, frames=4):
    model = tiny_model("s2d_tiny_patch8_112", num_frames=frames, num_classes=3, head_dropout=0.0, depth=depth)
    freeze_for_finetuning(model)  # the fine-tuning recipe: gradients reach the prompts through frozen blocks
    return model


def batch(clips=2, frames=4):
    generator = torch.Generator().manual_seed(1)
    video = torch.randn(clips, 3, frames, 112, 112, generator=generator)
    return video, LandmarkFeatures(None)(video)


def outputs_and_grads(model, video, landmark_feats):
    logits, feature = model(video, landmark_feats)
    (logits.logsumexp(-1).sum() + feature.square().mean()).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return logits.detach(), feature.detach(), grads


def assert_same(expected, actual, **tolerance):
    torch.testing.assert_close(actual[:2], expected[:2], **tolerance)
    assert actual[2].keys() == expected[2].keys() and len(expected[2]) > 0
    for name, grad in expected[2].items():
        torch.testing.assert_close(actual[2][name], grad, **tolerance, msg=lambda m: f"{name}: {m}")


def test_lean_layout_gives_the_same_outputs_and_gradients_with_fewer_copies():
    model, (video, landmark_feats) = tiny(), batch()
    expected = outputs_and_grads(model, video, landmark_feats)
    keys = list(model.state_dict())
    use_lean_layout(model)
    assert all(block.lean_layout for block in model.prompt_blocks) and list(model.state_dict()) == keys
    assert_same(expected, outputs_and_grads(model, video, landmark_feats), **TIGHT)
    # the copies it saves: the default copies the TMA input and output at full width and conv0_0's input too
    with torch.no_grad(), torch.profiler.profile(record_shapes=True) as lean:
        model(video, landmark_feats)
    use_lean_layout(model, enabled=False)
    with torch.no_grad(), torch.profiler.profile(record_shapes=True) as default:
        model(video, landmark_feats)
    assert copied_elements(lean) < 0.7 * copied_elements(default)


def copied_elements(profile):
    return sum(torch.Size(e.input_shapes[0]).numel() for e in profile.events() if e.name == "aten::clone")


def test_folded_batchnorm_gives_the_same_landmark_features():
    landmark = LandmarkFeatures(None)
    video = torch.randn(2, 3, 2, 112, 112)
    expected = landmark(video)
    fold_landmark_batchnorm(landmark)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in landmark.modules())
    assert not any(p.requires_grad for p in landmark.parameters()) and not landmark.training
    torch.testing.assert_close(landmark(video), expected, rtol=1e-4, atol=1e-5)


class CountingBackend:
    """A torch.compile backend that runs the captured graphs as they are and counts them."""

    def __init__(self):
        self.graphs = 0

    def __call__(self, graph_module, example_inputs):
        self.graphs += 1
        return graph_module.forward


def test_compile_layers_compiles_the_shared_layer_once_and_keeps_outputs():
    torch._dynamo.reset()
    model, (video, landmark_feats) = tiny(depth=6).eval(), batch()
    with torch.no_grad():
        expected = model(video, landmark_feats)
        backend = CountingBackend()
        compile_layers(model, backend=backend)
        torch.testing.assert_close(model(video, landmark_feats), expected, rtol=0, atol=0)
    # block 0; layer 1 (its prompt norm is prompt_norms.0, also the landmark stream's: the spec quirk); one graph
    # for layers 2-5, as for layers 2-11 of the base model
    assert backend.graphs == 3
    assert "prompted_layer" not in model.state_dict() and type(model).__name__ == "S2D"
    del model.prompted_layer  # back to eager
    assert model.prompted_layer is type(model).prompted_layer


@pytest.mark.slow
def test_compile_layers_training_step_gives_the_same_gradients():
    """With the lean layout, as benchmarked. Traced with aot_eager (forward and backward graphs, no code
    generation: inductor takes minutes on this CPU)."""
    torch._dynamo.reset()
    model, (video, landmark_feats) = tiny(), batch()
    expected = outputs_and_grads(model, video, landmark_feats)
    use_lean_layout(model)
    compile_layers(model, backend="aot_eager")
    assert_same(expected, outputs_and_grads(model, video, landmark_feats), **TIGHT)


def test_prepare_for_speed_applies_named_speedups_and_rejects_unknown_ones():
    model, landmark = tiny(), LandmarkFeatures(None)
    prepare_for_speed(model, landmark, speedups=("lean_layout", "fold_landmark_bn"))
    assert model.prompt_blocks[1].lean_layout and not any(isinstance(m, torch.nn.BatchNorm2d)
                                                          for m in landmark.modules())
    with pytest.raises(ValueError, match="unknown speed-ups"):
        prepare_for_speed(model, landmark, speedups=("fast",))
    with pytest.raises(ValueError, match="exclude each other"):
        prepare_for_speed(model, landmark, compile=True, speedups=("compile_layers",))


def test_cuda_graph_inference_leaves_cpu_runs_alone(monkeypatch):
    def no_cuda(*args, **kwargs):
        raise AssertionError("a CUDA call on a CPU input")

    monkeypatch.setattr(torch.cuda, "CUDAGraph", no_cuda)
    monkeypatch.setattr(torch.cuda, "Stream", no_cuda)
    model, (video, landmark_feats) = tiny().eval(), batch()
    graphed = CudaGraphInference(lambda v: model(v, landmark_feats), amp_dtype=torch.bfloat16)
    with torch.no_grad():
        expected = model(video, landmark_feats)
        torch.testing.assert_close(graphed(video), expected, rtol=0, atol=0)
    assert graphed.graphs == {}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_inference_replays_the_eager_result():
    model, (video, landmark_feats) = tiny().eval().cuda(), batch()
    video, landmark_feats = video.cuda(), landmark_feats.cuda()
    graphed = CudaGraphInference(lambda v: model(v, landmark_feats)[0])
    with torch.no_grad():
        expected = model(video, landmark_feats)[0]
        first, second = graphed(video), graphed(video)
    assert len(graphed.graphs) == 1
    torch.testing.assert_close(first, expected, **TIGHT)
    torch.testing.assert_close(second, expected, **TIGHT)
