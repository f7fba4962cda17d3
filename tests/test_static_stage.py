"""The static stage: the image model and its shared parts, its checkpoint layout, MAE weights, the
static -> video hand-over, the image datasets and converters, and a short static run end to end."""
import argparse
import json
import re

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from datasets import build_dataset
from datasets.synthetic import write_synthetic_images
from models.checkpoint import load_checkpoint, save_checkpoint
from models.freezing import TRAINABLE_NAME_PARTS, freeze_for_finetuning
from models.registry import build_model
from models.s2d import S2D
from scripts import convert_affectnet, convert_rafdb
from tests.helpers import KEYS, TINY, randomize, read_log, run_main, tiny_inputs, tiny_model

VIDEO_ONLY = ('.TMA.', 'temporal_embedding', 'ln_post', 'head.fc_cls')


def test_image_model_base_layout_is_the_video_layout_without_temporal_parts():
    with torch.device('meta'):
        model = build_model('s2d_image_base_patch16_224', num_classes=7)
    expected = {k: v for k, v in KEYS['keys'].items() if not any(part in k for part in VIDEO_ONLY)}
    expected.update({'norm.weight': [768], 'norm.bias': [768], 'head.weight': [7, 768], 'head.bias': [7]})
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == expected


@torch.no_grad()
def test_shared_parts_compute_the_same_in_the_image_and_video_models():
    video_model = randomize(S2D(**TINY)).eval()
    image_model = tiny_model('tiny_image').eval()
    missing, unexpected = image_model.load_state_dict(video_model.state_dict(), strict=False)
    assert sorted(missing) == ['head.bias', 'head.weight', 'norm.bias', 'norm.weight']
    assert unexpected and all(any(part in k for part in VIDEO_ONLY) for k in unexpected)
    video, landmarks = tiny_inputs(video_model)
    frames = video.transpose(1, 2).flatten(0, 1)
    # same prompt-block output p for the same inputs
    rgb = torch.randn(6, TINY['embed_dim'], 4, 4)
    lm = torch.randn(6, TINY['embed_dim'], 4, 4)
    p_video, q_video = video_model.prompt_blocks[2](rgb, lm)
    p_image, q_image = image_model.prompt_blocks[2](rgb, lm)
    assert torch.equal(p_video, p_image) and q_image is None and q_video.abs().sum() > 0
    # with the temporal parts silenced, the video model's tokens are the image model's, frame by frame
    assert not torch.allclose(video_model.forward_features(frames, landmarks),
                              image_model.forward_features(frames, landmarks), atol=1e-3)
    video_model.temporal_embedding.zero_()
    for block in video_model.prompt_blocks:
        block.TMA.S_Adapter.D_fc2.weight.zero_()
        block.TMA.S_Adapter.D_fc2.bias.zero_()
    torch.testing.assert_close(video_model.forward_features(frames, landmarks),
                               image_model.forward_features(frames, landmarks), rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_image_model_averages_frame_logits_and_features():
    model = randomize(tiny_model('tiny_image')).eval()
    video, landmarks = tiny_inputs(S2D(**TINY))
    logits, feature = model(video, landmarks)
    frame_logits, frame_features = model(video.transpose(1, 2).reshape(-1, 3, 1, 16, 16), landmarks)
    torch.testing.assert_close(logits, frame_logits.reshape(2, 3, -1).mean(1))
    torch.testing.assert_close(feature, frame_features.reshape(2, 3, -1).mean(1))
    assert logits.shape == (2, TINY['num_classes'])
    with pytest.raises(ValueError, match=r'landmark_feats must have shape \(6, 6, 4, 4\)'):
        model(video, landmarks[:5])


def test_mae_checkpoint_initialises_the_image_backbone(tmp_path, capsys):
    torch.manual_seed(3)
    mae = VisionTransformer(img_size=16, patch_size=4, embed_dim=64, depth=4, num_heads=4, num_classes=0,
                            global_pool='token')
    state = {f'module.{k}': v for k, v in mae.state_dict().items()}
    state.update({'module.mask_token': torch.zeros(1, 1, 64), 'module.decoder_embed.weight': torch.zeros(32, 64),
                  'module.decoder_blocks.0.attn.qkv.weight': torch.zeros(96, 32),
                  'module.decoder_pos_embed': torch.zeros(1, 17, 32)})
    path = tmp_path / 'vit-base-checkpoint-300.pth'
    torch.save({'model': state, 'epoch': 299}, path)
    model = tiny_model('tiny_image', seed=5)
    load_checkpoint(model, path, kind='pretrained')
    loaded = model.state_dict()
    for key, value in mae.state_dict().items():
        assert torch.equal(loaded[key], value), key
    out = capsys.readouterr().out
    assert 'Dropped 4 landmark-network / MAE-decoder entries' in out
    missing = eval(re.search(r'Missing keys \(left at their initialisation\): (\[.*\])', out).group(1))
    assert sorted(missing) == sorted(k for k in loaded if k not in mae.state_dict())
    assert 'head.weight' in missing and 'Unexpected keys (ignored): []' in out


def test_static_checkpoint_hands_over_to_the_video_model(tmp_path):
    static = randomize(tiny_model('tiny_image', seed=1, num_classes=7))
    path = tmp_path / 'static.pth'
    save_checkpoint({'model': static.state_dict(), 'epoch': 9, 'args': argparse.Namespace(model='tiny')}, path)
    video = S2D(**{**TINY, 'num_classes': 5})
    load_checkpoint(video, path, kind='pretrained')
    freeze_for_finetuning(video)
    source = static.state_dict()
    for name, param in video.named_parameters():
        if not param.requires_grad:
            assert torch.equal(param, source[name]), name
        if name.startswith('ln_post.'):
            assert torch.equal(param, source[name.replace('ln_post', 'norm')])
        if '.TMA.' not in name and name not in ('temporal_embedding', 'ln_post.weight', 'ln_post.bias') \
                and not name.startswith('head.'):
            assert torch.equal(param, source[name]), name
    trainable = {n for n, p in video.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in video.named_parameters() if any(part in n for part in TRAINABLE_NAME_PARTS)}
    assert 'blocks.0.attn.qkv.weight' not in trainable and 'prompt_blocks.1.conv0_0.weight' in trainable


# ---------------------------------------------------------------- image datasets and converters

def test_images_csv_gives_one_frame_clips_and_validates_rows(tmp_path):
    summary = write_synthetic_images(tmp_path / 'faces', images_per_class=5, size=32, seed=1)
    args = argparse.Namespace(data_set='IMAGES', nb_classes=7, data_path=str(tmp_path / 'faces'),
                              train_label_path=summary['train_csv'], test_label_path=summary['test_csv'],
                              val_label_path=summary['test_csv'], num_frames=16, sampling_rate=1, input_size=32,
                              short_side_size=32, test_num_segment=5, test_num_crop=3, num_sample=1,
                              aa='rand-m7-n4-mstd0.5-inc1', train_interpolation='bicubic', reprob=0.25,
                              remode='pixel', recount=1, skip_bad_clips=False, max_bad_fraction=0.01)
    train, classes = build_dataset(is_train=True, test_mode=False, args=args)
    test, _ = build_dataset(is_train=False, test_mode=True, args=args)
    assert classes == 7 and len(train) == summary['num_train'] and len(test) == summary['num_test']
    video, label, _ = train[0]
    assert video.shape == (3, 1, 32, 32) and label == train.labels[0]
    view = test[0]
    assert view[0].shape == (3, 1, 32, 32) and view[3:] == (0, 0)
    bad = tmp_path / 'bad.csv'
    bad.write_text('image,label\nimages/000001.jpg,0\nimages/missing.jpg,1\nimages,2\n')
    args.train_label_path = str(bad)
    with pytest.raises(ValueError, match=r"(?s)bad.csv:3: image file .*missing.jpg' does not exist.*"
                                         r"bad.csv:4: image file .*images' does not exist"):
        build_dataset(is_train=True, test_mode=False, args=args)
    args.skip_bad_clips = True
    with pytest.warns(UserWarning, match='skipping 2 bad row'), pytest.raises(ValueError, match='max_bad_fraction'):
        build_dataset(is_train=True, test_mode=False, args=args)
    args.max_bad_fraction = 1.0
    with pytest.warns(UserWarning, match='skipping 2 bad row'):
        kept, _ = build_dataset(is_train=True, test_mode=False, args=args)
    assert len(kept) == 1 and kept.clip_ids == ['images/000001.jpg']


def test_check_data_reads_image_csvs_as_images(tmp_path):
    from scripts.check_data import main as check_data
    summary = write_synthetic_images(tmp_path / 'faces', images_per_class=5, size=32, seed=3)
    corrupt = tmp_path / 'faces' / 'images' / '000002.jpg'
    corrupt.write_bytes(corrupt.read_bytes()[:100])
    report = tmp_path / 'bad.csv'
    status = check_data(['--data_set', 'IMAGES', '--nb_classes', '7', '--data_path', str(tmp_path / 'faces'),
                         '--label_path', summary['train_csv'], summary['test_csv'], '--report', str(report)])
    rows = report.read_text().splitlines()
    assert status == 1 and len(rows) == 2 and 'images/000002.jpg' in rows[1] and 'cannot be decoded' in rows[1]


def test_rafdb_converter(tmp_path):
    labels = tmp_path / 'basic' / 'EmoLabel' / 'list_patition_label.txt'
    labels.parent.mkdir(parents=True)
    labels.write_text('train_00001.jpg 5\ntrain_00002.jpg 1\n\ntest_0001.jpg 7\n')
    convert_rafdb.main(['--input', str(tmp_path / 'basic'), '--output', str(tmp_path / 'out')])
    assert (tmp_path / 'out' / 'train.csv').read_text() == (
        'image,label\nImage/aligned/train_00001_aligned.jpg,4\nImage/aligned/train_00002_aligned.jpg,0\n')
    assert (tmp_path / 'out' / 'test.csv').read_text() == 'image,label\nImage/aligned/test_0001_aligned.jpg,6\n'
    labels.write_text('train_00001.jpg 5\ntest_0001.jpg 8\n')
    with pytest.raises(SystemExit, match=r"list_patition_label.txt:2: label '8'; expected an integer 1..7"):
        convert_rafdb.main(['--input', str(labels), '--output', str(tmp_path / 'out2')])
    assert not (tmp_path / 'out2').exists()


AFFECTNET_HEADER = ('subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,'
                    'valence,arousal\n')


@pytest.mark.parametrize('classes, expected', [
    (7, 'image,label\n689/a.jpg,0\n392/b.png,6\n'),
    (8, 'image,label\n689/a.jpg,0\n392/b.png,6\n12/c.jpg,7\n'),
])
def test_affectnet_converter_keeps_7_or_8_classes(tmp_path, capsys, classes, expected):
    folder = tmp_path / 'Manually_Annotated_file_lists'
    folder.mkdir()
    (folder / 'training.csv').write_text(AFFECTNET_HEADER + '689/a.jpg,1,2,3,4,1.0;2.0,0,0.1,0.2\n'
                                         '392/b.png,1,2,3,4,1.0;2.0,6,0.1,0.2\n12/c.jpg,1,2,3,4,1.0,7,0,0\n'
                                         '13/d.jpg,1,2,3,4,1.0,10,-2,-2\n')
    (folder / 'validation.csv').write_text(AFFECTNET_HEADER + '5/e.jpg,1,2,3,4,1.0,3,0,0\n')
    convert_affectnet.main(['--input', str(folder), '--output', str(tmp_path / 'out'), '--num_classes', str(classes)])
    assert (tmp_path / 'out' / 'train.csv').read_text() == expected
    assert (tmp_path / 'out' / 'test.csv').read_text() == 'image,label\n5/e.jpg,3\n'
    assert f'dropped {5 - len(expected.splitlines())} with expression {classes}..10' in capsys.readouterr().out


def test_affectnet_converter_names_bad_lines(tmp_path):
    source = tmp_path / 'training.csv'
    source.write_text(AFFECTNET_HEADER + '1/a.jpg,1,2,3,4,1.0,11,0,0\n')
    with pytest.raises(SystemExit, match=r"training.csv:2: label '11'; expected an integer 0..10"):
        convert_affectnet.main(['--input', str(source), '--output', str(tmp_path / 'out.csv')])
    source.write_text('path,label\n1/a.jpg,1\n')
    with pytest.raises(SystemExit, match=r'training.csv:1: header has no column subDirectory_filePath, expression'):
        convert_affectnet.main(['--input', str(source), '--output', str(tmp_path / 'out.csv')])


# ---------------------------------------------------------------- end to end

@pytest.mark.slow
def test_static_run_then_video_finetune_end_to_end(tmp_path):
    faces = write_synthetic_images(tmp_path / 'faces', images_per_class=5, size=64, seed=2)
    common = ['--device', 'cpu', '--landmark_weights', 'random', '--input_size', '64', '--short_side_size', '64',
              '--batch_size', '4', '--num_sample', '1', '--epochs', '1', '--warmup_epochs', '0', '--num_workers', '0',
              '--lr', '1e-3', '--print_freq', '5']
    static_dir = tmp_path / 'static'
    run_main(['--model', 's2d_image_tiny_patch8_64', '--data_set', 'IMAGES', '--nb_classes', '7',
              '--data_path', str(tmp_path / 'faces'), '--train_label_path', faces['train_csv'],
              '--test_label_path', faces['test_csv'], '--drop_path', '0.1', '--output_dir', str(static_dir), *common])
    final = read_log(static_dir)[-1]
    assert final['final_last_num_clips'] == faces['num_test'] and 0 <= final['final_last_war'] <= 100
    static_state = torch.load(static_dir / 'checkpoint.pth', weights_only=False)['model']
    assert 'head.weight' in static_state and not any('TMA' in k for k in static_state)

    from datasets.synthetic import write_synthetic_dfew
    clips = tmp_path / 'clips'
    write_synthetic_dfew(clips, clips_per_class=5, num_frames=4, size=64, seed=0)
    video_dir = tmp_path / 'video'
    result = run_main(['--model', 's2d_tiny_patch8_64', '--finetune', str(static_dir / 'checkpoint.pth'),
                       '--data_set', 'DFEW', '--data_path', str(clips / 'clips'), '--num_frames', '4',
                       '--train_label_path', str(clips / 'splits' / 'train_set_1.csv'),
                       '--test_label_path', str(clips / 'splits' / 'test_set_1.csv'), '--ban_mixup',
                       '--test_num_segment', '1', '--test_num_crop', '1', '--output_dir', str(video_dir), *common])
    assert "Unexpected keys (ignored): ['head.weight', 'head.bias']" in result.stdout
    assert 'trainable parameters: 0.24 M' in result.stdout
    video_state = torch.load(video_dir / 'checkpoint.pth', weights_only=False)['model']
    for key in ('blocks.0.attn.qkv.weight', 'patch_embed.proj.weight', 'cls_token'):
        assert torch.equal(video_state[key], static_state[key]), key
    assert json.loads((video_dir / 'log.txt').read_text().splitlines()[-1])['final_last_num_clips'] == 7

    refused = run_main(['--model', 's2d_tiny_patch8_64', '--data_set', 'IMAGES', '--nb_classes', '7',
                        '--data_path', str(tmp_path / 'faces'), '--train_label_path', faces['train_csv'],
                        '--test_label_path', faces['test_csv'], *common], check=False)
    assert refused.returncode != 0 and 'train an image model (s2d_image_*)' in refused.stderr
