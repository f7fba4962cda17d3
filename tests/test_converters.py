import pytest

from scripts import convert_dfew, convert_ferv39k, convert_mafw


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_dfew_file_is_made_zero_based_with_five_digit_names(tmp_path):
    source = write(tmp_path / 'set_1.csv', 'video_name,label\n2522,1\n00017,7\n10999,3\n')
    convert_dfew.main(['--input', str(source), '--output', str(tmp_path / 'out.csv')])
    assert (tmp_path / 'out.csv').read_text() == 'video_name,label\n02522,0\n00017,6\n10999,2\n'


def test_dfew_folder_gives_train_and_test_set_per_fold(tmp_path):
    split_folder = tmp_path / 'EmoLabel_DataSplit'
    write(split_folder / 'train(single-labeled)' / 'set_1.csv', 'video_name,label\n1,4\n2,5\n')
    write(split_folder / 'test(single-labeled)' / 'set_1.csv', 'video_name,label\n3,2\n')
    write(split_folder / 'train(single-labeled)' / 'set_2.csv', 'video_name,label\n3,2\n')
    write(split_folder / 'test(single-labeled)' / 'set_2.csv', 'video_name,label\n1,4\n2,5\n')
    convert_dfew.main(['--input', str(split_folder), '--output', str(tmp_path / 'out')])
    written = {path.name: path.read_text() for path in (tmp_path / 'out').iterdir()}
    assert written == {'train_set_1.csv': 'video_name,label\n00001,3\n00002,4\n',
                       'test_set_1.csv': 'video_name,label\n00003,1\n',
                       'train_set_2.csv': 'video_name,label\n00003,1\n',
                       'test_set_2.csv': 'video_name,label\n00001,3\n00002,4\n'}


@pytest.mark.parametrize('rows, message', [
    ('1,1\n2,8\n', r'set_1.csv:3: label .8.; expected an integer 1..7'),
    ('1,0\n', r'set_1.csv:2: label .0.'),
    ('1,1\n01,2\n', r'set_1.csv:3: duplicate clip .00001. \(first on line 2\)'),
    ('123456,1\n', r'set_1.csv:2: clip name .123456.'),
    ('1,1,2\n', r'set_1.csv:2: 3 fields'),
])
def test_dfew_refuses_bad_rows_naming_the_line(tmp_path, rows, message):
    source = write(tmp_path / 'set_1.csv', 'video_name,label\n' + rows)
    with pytest.raises(SystemExit, match=message):
        convert_dfew.main(['--input', str(source), '--output', str(tmp_path / 'out.csv')])
    assert not (tmp_path / 'out.csv').exists()


def test_dfew_refuses_a_wrong_header(tmp_path):
    source = write(tmp_path / 'set_1.csv', 'path,id\n1,1\n')
    with pytest.raises(SystemExit, match=r'set_1.csv:1: header'):
        convert_dfew.main(['--input', str(source), '--output', str(tmp_path / 'out.csv')])


def test_no_output_is_written_when_any_input_of_a_folder_is_bad(tmp_path):
    write(tmp_path / 'in' / 'train(single-labeled)' / 'set_1.csv', 'video_name,label\n1,1\n')
    write(tmp_path / 'in' / 'test(single-labeled)' / 'set_1.csv', 'video_name,label\n2,9\n')
    with pytest.raises(SystemExit, match='test.single-labeled./set_1.csv:2'):
        convert_dfew.main(['--input', str(tmp_path / 'in'), '--output', str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()


def test_mafw_lists_become_zero_based_csvs_per_set(tmp_path):
    write(tmp_path / 'in' / 'set_1' / 'train.txt', '03747.mp4 anger\n00012.mp4 Surprise\n\n')
    write(tmp_path / 'in' / 'set_1' / 'test.txt', '10001.mp4 HELPLESSNESS\n')
    convert_mafw.main(['--input', str(tmp_path / 'in'), '--output', str(tmp_path / 'out')])
    assert (tmp_path / 'out' / 'set_1' / 'train.csv').read_text() == \
        'video_name,labels\n03747,0\n00012,10\n'
    assert (tmp_path / 'out' / 'set_1' / 'test.csv').read_text() == 'video_name,labels\n10001,7\n'


@pytest.mark.parametrize('lines, message', [
    ('00001.mp4 anger\n00002.mp4 joy\n', r'train.txt:2: unknown class .joy.'),
    ('00001.mp4 anger\n00001.mp4 fear\n', r'train.txt:2: duplicate clip .00001.'),
    ('00001.avi anger\n', r'train.txt:1: .00001.avi anger.; expected'),
])
def test_mafw_refuses_bad_lines_naming_the_line(tmp_path, lines, message):
    source = write(tmp_path / 'train.txt', lines)
    with pytest.raises(SystemExit, match=message):
        convert_mafw.main(['--input', str(source), '--output', str(tmp_path / 'out.csv')])


def test_ferv39k_list_is_checked_and_written_as_path_id(tmp_path):
    source = write(tmp_path / 'train_All.txt', 'Crime/Angry/0063 0\nDaily/Surprise/0001 6\n')
    convert_ferv39k.main(['--input', str(source), '--output', str(tmp_path / 'train.csv')])
    assert (tmp_path / 'train.csv').read_text() == 'path,id\nCrime/Angry/0063,0\nDaily/Surprise/0001,6\n'


@pytest.mark.parametrize('lines, message', [
    ('Crime/Angry/0063 7\n', r'train.txt:1: label .7.; expected an integer 0..6'),
    ('Crime/Angry/0063 3\n', r'train.txt:1: label 3 \(happy\) does not match the emotion folder .Angry.'),
    ('Crime/Angry/0063 0\nCrime/Angry/0063 0\n', r'train.txt:2: duplicate clip'),
])
def test_ferv39k_refuses_bad_lines_naming_the_line(tmp_path, lines, message):
    source = write(tmp_path / 'train.txt', lines)
    with pytest.raises(SystemExit, match=message):
        convert_ferv39k.main(['--input', str(source), '--output', str(tmp_path / 'out.csv')])


def test_converter_refuses_to_overwrite_its_input(tmp_path):
    source = write(tmp_path / 'lists' / 'test.csv', 'Crime/Angry/0063 0\n')
    with pytest.raises(SystemExit, match='refusing to overwrite the input'):
        convert_ferv39k.main(['--input', str(tmp_path / 'lists'), '--output', str(tmp_path / 'lists')])
    assert source.read_text() == 'Crime/Angry/0063 0\n'
