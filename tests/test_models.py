import math

import pytest
import torch
import torch.nn.functional as F
from timm.layers import Attention

from models.freezing import freeze_for_finetuning
from models.registry import build_model
from models.tma import TemporalModelingAdapter
from tests.helpers import KEYS, TINY, randomize, tiny_inputs, tiny_model

# ---------------------------------------------------------------- layout, counts, freezing

def meta_base(**overrides):
    with torch.device('meta'):
        return build_model('s2d_base_patch16_224', **overrides)


def shapes(model):
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def test_base_state_dict_matches_spec_for_7_and_11_classes():
    assert KEYS['model'] == 's2d_base_patch16_224'
    model7 = meta_base(num_classes=KEYS['num_classes'], num_frames=KEYS['num_frames'])
    assert list(shapes(model7).items()) == list(KEYS['keys'].items())
    model11 = meta_base(num_classes=11)
    diff = {k: [KEYS['keys'][k], v] for k, v in shapes(model11).items() if v != KEYS['keys'][k]}
    assert diff == KEYS['differs_for_11_classes']
    assert set(shapes(model11)) == set(KEYS['keys'])
    assert KEYS['state_entries_that_are_not_parameters'] == [
        k for k in model7.state_dict() if k not in dict(model7.named_parameters())]


def test_freeze_for_finetuning_counts_and_names(capsys):
    model = meta_base()
    n_total, n_trainable = freeze_for_finetuning(model)
    assert (n_total, n_trainable) == (KEYS['total_params'], KEYS['trainable_params'])
    assert [n for n, p in model.named_parameters() if p.requires_grad] == KEYS['trainable_param_names']
    assert capsys.readouterr().out.strip() == (
        f'Number of total parameters: {n_total / 1e6:.2f} M, trainable parameters: {n_trainable / 1e6:.2f} M')


def test_fix_lgp_freezes_prompt_generators_but_not_adapters():
    model = meta_base()
    freeze_for_finetuning(model, fix_lgp=True)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected = {n for n in KEYS['trainable_param_names'] if not ('prompt' in n and 'Adapter' not in n)}
    assert trainable == expected
    assert 'prompt_blocks.0.TMA.T_Adapter.attn.qkv.weight' in trainable
    assert 'prompt_blocks.0.conv0_0.weight' not in trainable and 'head.fc_cls.weight' in trainable


def test_gradients_reach_exactly_the_trainable_parameters():
    model = tiny_model()
    freeze_for_finetuning(model)
    model.train()
    video, landmarks = tiny_inputs(model)
    logits, _ = model(video, landmarks)
    F.cross_entropy(logits, torch.tensor([0, 3])).backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    # quirk: the last prompt norm is never used, so it is the one trainable parameter without gradient
    assert with_grad == trainable - {'prompt_norms.3.weight', 'prompt_norms.3.bias'}
    assert model.pos_embed.grad is None and model.blocks[0].attn.qkv.weight.grad is None


# ---------------------------------------------------------------- construction and interface

def test_build_model_registry_and_overrides():
    model = build_model('s2d_tiny_patch8_112', num_classes=11, num_frames=4, head_dropout=0.0)
    assert (model.img_size, model.grid_size, model.num_frames, model.num_classes) == (112, 14, 4, 11)
    assert model.get_num_layers() == model.num_layers == 4
    assert model.blocks[0].attn.num_heads == 3 and model.cls_token.shape == (1, 1, 192)
    assert isinstance(model.head.dropout, torch.nn.Identity)
    with pytest.raises(ValueError, match='s2d_base_patch16_224.*s2d_tiny_patch8_112'):
        build_model('s2d_huge')


def test_no_weight_decay_and_frozen_pos_embed():
    model = tiny_model()
    assert model.no_weight_decay() == {'pos_embed', 'cls_token', 'temporal_embedding'}
    assert not model.pos_embed.requires_grad and 'pos_embed' in model.state_dict()


def test_initialisation():
    model = tiny_model(embed_dim=256, depth=1, num_heads=4)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert all(torch.all(m.bias == 0) for m in linears if m.bias is not None)
    fc1 = model.blocks[0].mlp.fc1.weight
    assert abs(fc1.std().item() - 0.02) < 0.001
    for emb in (model.cls_token, model.pos_embed, model.temporal_embedding):
        assert 0.005 < emb.std().item() < 0.04
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in norms)
    block = model.prompt_blocks[0]
    for conv in (block.conv0_0, block.conv0_1, block.conv1x1):
        out_ch, in_ch = conv.weight.shape[:2]
        bound = math.sqrt(6 / (in_ch + out_ch))
        assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.8 * bound
    assert block.fovea.smooth.tolist() == [10.0]


def test_layer_norm_eps():
    model = tiny_model()
    vit_norms = [model.ln_post, *model.prompt_norms] + [n for b in model.blocks for n in (b.norm1, b.norm2)]
    assert all(n.eps == 1e-6 for n in vit_norms)
    assert all(b.TMA.norm.eps == 1e-5 for b in model.prompt_blocks)


def test_input_validation():
    model = tiny_model()
    video, landmarks = tiny_inputs(model)
    with pytest.raises(ValueError, match='num_frames=3'):
        model(video[:, :, :2], landmarks[:4])
    with pytest.raises(ValueError, match=r'img_size=16.*\(2, 3, 3, 20, 20\)'):
        model(F.pad(video, (2, 2, 2, 2)), landmarks)
    with pytest.raises(ValueError, match='landmark_feats'):
        model(video, landmarks[:, :3])


# ---------------------------------------------------------------- independent reference forward

def ref_layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def ref_linear(x, P, name, bias=True):
    y = x @ P[name + '.weight'].T
    return y + P[name + '.bias'] if bias else y


def ref_gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def ref_self_attention(x, P, name, heads, qkv_bias):
    n, length, dim = x.shape
    hd = dim // heads
    qkv = ref_linear(x, P, name + '.qkv', bias=qkv_bias)
    q, k, v = (qkv[..., i * dim:(i + 1) * dim].reshape(n, length, heads, hd).transpose(1, 2) for i in range(3))
    scores = (q @ k.transpose(-1, -2)) * hd ** -0.5
    weights = torch.exp(scores - scores.amax(-1, keepdim=True))
    weights = weights / weights.sum(-1, keepdim=True)
    out = (weights @ v).transpose(1, 2).reshape(n, length, dim)
    return ref_linear(out, P, name + '.proj')


def ref_token2feature(tokens, grid):
    out = tokens.new_zeros(tokens.shape[0], tokens.shape[2], grid, grid)
    for n in range(tokens.shape[1]):
        out[:, :, n // grid, n % grid] = tokens[:, n]
    return out


def ref_feature2token(feature):
    grid = feature.shape[-1]
    return torch.stack([feature[:, :, n // grid, n % grid] for n in range(grid * grid)], dim=1)


def ref_conv1x1(x, P, name):
    return torch.einsum('oc,bchw->bohw', P[name + '.weight'][:, :, 0, 0], x) + P[name + '.bias'][None, :, None, None]


def ref_fovea(x, smooth):
    b, c, h, w = x.shape
    flat = x.reshape(b, c, h * w)
    e = torch.exp(flat * smooth - (flat * smooth).amax(-1, keepdim=True))
    return (e / e.sum(-1, keepdim=True) * flat).reshape(b, c, h, w)


def ref_tma(tokens, P, name, frames, norm_eps=1e-5):
    bt, n, d = tokens.shape
    b = bt // frames
    seq = tokens.reshape(b, frames, n, d).permute(0, 2, 1, 3).reshape(b * n, frames, d)
    h = ref_gelu(ref_linear(seq, P, name + '.T_Adapter.D_fc1'))
    h = ref_self_attention(h, P, name + '.T_Adapter.attn', heads=8, qkv_bias=False)
    h = ref_linear(h, P, name + '.T_Adapter.D_fc2')
    h = h.reshape(b, n, frames, d).permute(0, 2, 1, 3).reshape(bt, n, d)
    h = ref_layer_norm(h, P[name + '.norm.weight'], P[name + '.norm.bias'], norm_eps)
    return ref_linear(ref_gelu(ref_linear(h, P, name + '.S_Adapter.D_fc1')), P, name + '.S_Adapter.D_fc2')


def ref_prompt_block(z, P, name, frames):
    d = z.shape[1] // 2
    z_rgb, z_lm = z[:, :d], z[:, d:]
    q = ref_tma(ref_feature2token(z_rgb), P, name + '.TMA', frames)
    g = ref_fovea(ref_conv1x1(z_rgb, P, name + '.conv0_0'), P[name + '.fovea.smooth']) \
        + ref_conv1x1(z_lm, P, name + '.conv0_1')
    return ref_conv1x1(g, P, name + '.conv1x1'), q


def ref_vit_block(x, P, name, heads):
    def ln(y, n):
        return ref_layer_norm(y, P[f'{name}.{n}.weight'], P[f'{name}.{n}.bias'], 1e-6)

    x = x + ref_self_attention(ln(x, 'norm1'), P, name + '.attn', heads, qkv_bias=True)
    return x + ref_linear(ref_gelu(ref_linear(ln(x, 'norm2'), P, name + '.mlp.fc1')), P, name + '.mlp.fc2')


def ref_s2d(video, a, P, cfg):
    b, _, t, s, _ = video.shape
    p_size, depth, grid = cfg['patch_size'], cfg['depth'], cfg['img_size'] // cfg['patch_size']

    def pn(y, i):
        return ref_layer_norm(y, P[f'prompt_norms.{i}.weight'], P[f'prompt_norms.{i}.bias'], 1e-6)

    frames = video.permute(0, 2, 1, 3, 4).reshape(b * t, 3, s, s)
    patches = frames.reshape(b * t, 3, grid, p_size, grid, p_size).permute(0, 2, 4, 1, 3, 5)
    x = patches.reshape(b * t, grid * grid, -1) @ P['patch_embed.proj.weight'].reshape(cfg['embed_dim'], -1).T
    x = x + P['patch_embed.proj.bias']
    a = ref_feature2token(ref_conv1x1(a, P, 'patch_embed_prompt.proj'))

    z = torch.cat([ref_token2feature(pn(x, 0), grid), ref_token2feature(pn(a, 0), grid)], dim=1)
    p, q = ref_prompt_block(z, P, 'prompt_blocks.0', t)
    a = ref_feature2token(p)
    x = x + q + a

    x = torch.cat([P['cls_token'].expand(b * t, 1, -1), x], dim=1) + P['pos_embed']
    x = torch.stack([x[i] + P['temporal_embedding'][0, i % t] for i in range(b * t)])
    for i in range(depth):
        if i >= 1:
            y = pn(x, i - 1)
            z = torch.cat([ref_token2feature(y[:, 1:], grid), ref_token2feature(pn(a, 0), grid)], dim=1)
            p, q = ref_prompt_block(z, P, f'prompt_blocks.{i}', t)
            a = ref_feature2token(p)
            x = torch.cat([x[:, :1], x[:, 1:] + q + a], dim=1)
        x = ref_vit_block(x, P, f'blocks.{i}', cfg['num_heads'])
    cls = ref_layer_norm(x, P['ln_post.weight'], P['ln_post.bias'], 1e-6)[:, 0]
    feature = cls.reshape(b, t, -1).mean(1)
    return ref_linear(feature, P, 'head.fc_cls'), feature


def test_forward_equals_independent_reference():
    model = randomize(tiny_model()).double().eval()
    video, landmarks = tiny_inputs(model, dtype=torch.float64)
    P = {k: v.detach() for k, v in model.state_dict().items()}
    with torch.no_grad():
        logits, feature = model(video, landmarks)
        ref_logits, ref_feature = ref_s2d(video, landmarks, P, TINY)
    assert logits.shape == (2, TINY['num_classes']) and feature.shape == (2, TINY['embed_dim'])
    torch.testing.assert_close(feature, ref_feature, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-9, atol=1e-9)
    assert logits.std() > 0.1  # the comparison is not between near-constant outputs


def test_tma_fused_attention_equals_softmax_formula():
    torch.manual_seed(0)
    attn = Attention(48, num_heads=8, qkv_bias=False)
    assert attn.fused_attn and attn.qkv.bias is None
    x = torch.randn(5, 7, 48)
    P = {k: v.detach() for k, v in attn.state_dict().items()}
    torch.testing.assert_close(attn(x), ref_self_attention(x, {f'a.{k}': v for k, v in P.items()}, 'a', 8, False))


# ---------------------------------------------------------------- quirks

def outputs(model, seed=1):
    with torch.no_grad():
        return model(*tiny_inputs(model, seed=seed))


def perturbed(model, param_name):
    with torch.no_grad():
        model.get_parameter(param_name).add_(1.0)
    return model


def test_last_prompt_norm_is_unused():
    model = randomize(tiny_model()).eval()
    before = outputs(model)
    after = outputs(perturbed(model, f'prompt_norms.{TINY["depth"] - 1}.weight'))
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])


def test_prompt_norm_index_is_shifted_by_one():
    model = randomize(tiny_model()).eval()
    before = outputs(model)
    # prompt_norms.{depth-2} is used by the last deep prompt (i = depth-1), so it changes the output
    after = outputs(perturbed(model, f'prompt_norms.{TINY["depth"] - 2}.weight'))
    assert not torch.allclose(before[0], after[0], atol=1e-4)


def test_prompt_norm_0_serves_stage_0_first_deep_prompt_and_every_landmark_stream():
    model = tiny_model()
    calls = {i: [] for i in range(TINY['depth'])}
    for i, norm in enumerate(model.prompt_norms):
        norm.register_forward_hook(lambda m, inp, out, i=i: calls[i].append(inp[0].shape[1]))
    outputs(model)
    n = model.grid_size ** 2
    depth = TINY['depth']
    # norms.0: stage-0 rgb and landmark, the deep prompt i=1 (with class token), landmarks of i>=1
    assert sorted(calls[0]) == sorted([n, n, n + 1] + [n] * (depth - 1))
    assert all(calls[j] == [n + 1] for j in range(1, depth - 1))
    assert calls[depth - 1] == []


def test_tma_norm_uses_eps_1e5():
    torch.manual_seed(0)
    tma = TemporalModelingAdapter(64, num_frames=2).double()
    with torch.no_grad():
        tma.T_Adapter.D_fc2.weight.mul_(1e-3)
        tma.T_Adapter.D_fc2.bias.normal_(std=1e-3)
    x = torch.randn(4, 3, 64, dtype=torch.float64)
    P = {f't.{k}': v.detach() for k, v in tma.state_dict().items()}
    out = tma(x).detach()
    torch.testing.assert_close(out, ref_tma(x, P, 't', 2))
    # the pre-norm variance is tiny, so eps matters: the ViT's 1e-6 would give another result
    assert (out - ref_tma(x, P, 't', 2, norm_eps=1e-6)).abs().max() > 1e-3


def test_feature_is_taken_after_dropout():
    model = tiny_model(head_dropout=0.5)
    video, landmarks = tiny_inputs(model)
    model.train()
    logits1, feature1 = model(video, landmarks)
    _, feature2 = model(video, landmarks)
    assert not torch.allclose(feature1, feature2)
    assert (feature1 == 0).any()
    torch.testing.assert_close(logits1, model.head.fc_cls(feature1))
    model.eval()
    _, e1 = model(video, landmarks)
    _, e2 = model(video, landmarks)
    assert torch.equal(e1, e2) and not (e1 == 0).any()
