import argparse
import os

import pytest
import torch

from models.checkpoint import UnsafeCheckpointError, load_checkpoint, safe_load, save_checkpoint
from tests.helpers import tiny_inputs, tiny_model


class NotAllowed:
    """A custom class: safe loading must refuse to unpickle it."""


def eval_outputs(model):
    model.eval()
    with torch.no_grad():
        return model(*tiny_inputs(model))


def test_original_finetuned_layout_round_trip(tmp_path):
    source = tiny_model(seed=0)
    path = tmp_path / 'checkpoint-best.pth'
    args = argparse.Namespace(model='s2d', nb_classes=5, input_size=16, lr=1e-3)
    torch.save({'model': source.state_dict(), 'epoch': 'best', 'args': args, 'optimizer': None}, path)
    target = tiny_model(seed=1)
    assert not torch.equal(eval_outputs(target)[0], eval_outputs(source)[0])
    checkpoint = load_checkpoint(target, path, kind='finetuned')
    assert checkpoint['epoch'] == 'best' and checkpoint['optimizer'] is None and checkpoint['args'] == args
    for a, b in zip(eval_outputs(source), eval_outputs(target)):
        assert torch.equal(a, b)


def test_resume_round_trip_through_save_checkpoint(tmp_path):
    source = tiny_model(seed=0)
    optimizer = torch.optim.AdamW(source.parameters(), lr=1e-3)
    path = tmp_path / 'checkpoint.pth'
    save_checkpoint({'model': source.state_dict(), 'optimizer': optimizer.state_dict(), 'epoch': 4,
                     'scaler': None, 'args': argparse.Namespace(epochs=10)}, path)
    assert os.listdir(tmp_path) == ['checkpoint.pth']
    target = tiny_model(seed=1)
    checkpoint = load_checkpoint(target, path, kind='resume')
    assert checkpoint['epoch'] == 4 and checkpoint['args'].epochs == 10
    assert checkpoint['optimizer']['param_groups'][0]['lr'] == 1e-3
    assert torch.equal(eval_outputs(source)[0], eval_outputs(target)[0])


def test_save_checkpoint_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / 'checkpoint.pth'
    save_checkpoint({'epoch': 1}, path)
    with pytest.raises(Exception):
        save_checkpoint({'epoch': 2, 'bad': lambda: None}, path)
    assert os.listdir(tmp_path) == ['checkpoint.pth'] and safe_load(path) == {'epoch': 1}


def test_strict_loading_reports_missing_unexpected_and_shapes(tmp_path):
    state = tiny_model().state_dict()
    state.pop('ln_post.bias')
    state['extra.weight'] = torch.zeros(1)
    state['head.fc_cls.bias'] = torch.zeros(9)
    path = tmp_path / 'bad.pth'
    torch.save({'model': state}, path)
    with pytest.raises(ValueError, match=r"bad\.pth.*'ln_post\.bias'.*'extra\.weight'.*head\.fc_cls\.bias: \(9,\)"):
        load_checkpoint(tiny_model(), path, kind='finetuned')
    torch.save({'model_state_dict': state}, path)
    with pytest.raises(ValueError, match='no "model" entry'):
        load_checkpoint(tiny_model(), path, kind='resume')


def test_pretrained_loading_rules(tmp_path, capsys):
    source = tiny_model(seed=0, num_classes=7, landmark_channels=4)
    state = {f'module.{k}': v for k, v in source.state_dict().items()}
    state['module.norm.weight'] = state.pop('module.ln_post.weight')
    state['module.norm.bias'] = state.pop('module.ln_post.bias')
    state['module.landmark_net.conv1.weight'] = torch.zeros(3)
    state['module.fc_norm.weight'] = torch.zeros(3)
    del state['module.blocks.0.norm1.bias']
    path = tmp_path / 'pretrain.pth'
    torch.save({'model_state_dict': state, 'model': {}}, path)

    target = tiny_model(seed=1, num_classes=5, landmark_channels=6)
    initial = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.warns(UserWarning) as record:
        load_checkpoint(target, path, kind='pretrained')
    messages = ' | '.join(str(w.message) for w in record)
    assert 'head.fc_cls.weight: shape (7, 64) in the checkpoint, (5, 64) in the model' in messages
    assert 'patch_embed_prompt.proj.weight: shape (64, 4, 1, 1) in the checkpoint, (64, 6, 1, 1)' in messages
    out = capsys.readouterr().out
    missing = out.split('Missing keys')[1].split('Unexpected keys')[0]
    unexpected = out.split('Unexpected keys')[1]
    for key in ('head.fc_cls.weight', 'head.fc_cls.bias', 'patch_embed_prompt.proj.weight', 'blocks.0.norm1.bias'):
        assert key in missing and torch.equal(target.state_dict()[key], initial[key])
    assert 'fc_norm.weight' in unexpected and 'landmark' not in missing + unexpected and 'ln_post' not in missing
    assert 'Dropped 1 landmark-network / MAE-decoder entries of the checkpoint' in out
    source_state = source.state_dict()
    for key in ('ln_post.weight', 'ln_post.bias', 'patch_embed_prompt.proj.bias', 'blocks.3.attn.qkv.weight'):
        assert torch.equal(target.state_dict()[key], source_state[key]), key


@pytest.mark.parametrize('layout', ['model', 'bare'])
def test_pretrained_state_dict_locations(tmp_path, layout):
    source = tiny_model(seed=0)
    path = tmp_path / 'pretrain.pth'
    torch.save({'model': source.state_dict()} if layout == 'model' else source.state_dict(), path)
    target = tiny_model(seed=1)
    load_checkpoint(target, path, kind='pretrained')
    assert torch.equal(eval_outputs(source)[0], eval_outputs(target)[0])


def test_pretrained_without_a_state_dict(tmp_path):
    path = tmp_path / 'odd.pth'
    torch.save({'weights': 3}, path)
    with pytest.raises(ValueError, match=r"odd\.pth.*\['weights'\]"):
        load_checkpoint(tiny_model(), path, kind='pretrained')


def test_unknown_kind_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="'best'.*pretrained"):
        load_checkpoint(tiny_model(), tmp_path / 'x.pth', kind='best')
    with pytest.raises(FileNotFoundError, match='x.pth'):
        load_checkpoint(tiny_model(), tmp_path / 'x.pth', kind='finetuned')
    with pytest.raises(FileNotFoundError, match='y.pth'):
        safe_load(tmp_path / 'y.pth')


def test_safe_load_refuses_custom_types_unless_trusted(tmp_path):
    path = tmp_path / 'custom.pth'
    torch.save({'model': {}, 'extra': NotAllowed()}, path)
    with pytest.raises(UnsafeCheckpointError,
                       match=r'custom\.pth.*tests\.test_checkpoint\.NotAllowed.*--trust_checkpoint'):
        safe_load(path)
    assert isinstance(safe_load(path, trust=True)['extra'], NotAllowed)
