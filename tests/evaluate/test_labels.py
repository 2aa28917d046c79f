"""Label files: the per-frame ``frame;label`` CSV, named intervals, and precise errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from otsight.evaluate.labels import (
    Attack,
    LabelError,
    intervals_to_labels,
    load_labels,
    parse_time,
    read_frame_labels,
    read_intervals,
)

S = 10**9
T0 = 1_709_280_000 * S  # 2024-03-01T08:00:00Z


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- per-frame CSV


def test_frame_label_csv_with_header(tmp_path):
    path = write(
        tmp_path,
        "l.csv",
        "frame;label\n1;normal\n2;write_setpoint\n3;write_setpoint\n4;Benign\n5;0\n6;\n7;scan\n",
    )
    labels = read_frame_labels(path)
    assert labels.format == "frame-csv"
    assert labels.attack.tolist() == [0, 1, 1, 0, 0, 0, 2]
    assert labels.names == ["benign", "write_setpoint", "scan"]
    assert labels.attacks == [Attack("write_setpoint"), Attack("scan")]
    assert labels.frames_of(1).tolist() == [2, 3]


def test_frame_labels_are_sparse_and_padded_to_the_capture(tmp_path):
    # QUT's S7comm set lists only attack frames, comma-separated, no header, summary between
    path = write(
        tmp_path,
        "master.csv",
        "1,Ether / IP / TCP 10.10.10.66:49610 > 10.10.10.10:iso_tsap PA / Raw,WaterTankOff\n"
        "3,Ether / IP / TCP 10.10.10.66:49610 > 10.10.10.10:iso_tsap PA / Raw,WaterTankOff",
    )
    labels = read_frame_labels(path, n_frames=5)
    assert labels.attack.tolist() == [1, 0, 1, 0, 0]
    assert labels.names == ["benign", "WaterTankOff"]


def test_header_columns_found_by_name(tmp_path):
    path = write(tmp_path, "l.csv", "frame_no,summary,attack_name\n2,a, b, c,x\n1,y,normal\n")
    # the free-text column holds unquoted commas: the last column is read from the end
    assert read_frame_labels(path).attack.tolist() == [0, 1]
    path = write(tmp_path, "m.csv", "label\tframe\nstop\t2\n")
    assert read_frame_labels(path).attack.tolist() == [0, 1]


def test_comments_blank_lines_and_frame_alone(tmp_path):
    path = write(tmp_path, "l.csv", "# made by hand\n\n1\n2;x\n")
    assert read_frame_labels(path).attack.tolist() == [0, 1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("frame;label\n1;a\nx;b\n", "l.csv:3: frame 'x' is not an integer"),
        ("frame;label\n0;a\n", "l.csv:2: frame 0 is not positive (frames are 1-based)"),
        ("1;a\n-4;b\n", "l.csv:2: frame -4 is not positive"),
        ("1;a\n2;a\n1;b\n", "l.csv:3: frame 1 is labelled twice (also line 1)"),
        ("", "no labels (the file is empty)"),
        ("time;what\n1;2\n", "l.csv:1: header 'time;what' has no frame and label columns"),
    ],
)
def test_frame_label_errors_name_the_line(tmp_path, text, message):
    path = write(tmp_path, "l.csv", text)
    with pytest.raises(LabelError) as info:
        read_frame_labels(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_every_problem_is_collected_in_one_pass(tmp_path):
    path = write(tmp_path, "l.csv", "frame;label\n0;a\nb;a\n2;a\n2;a\n")
    with pytest.raises(LabelError) as info:
        read_frame_labels(path)
    assert len(info.value.problems) == 3
    assert str(info.value).endswith("(and 2 more problems)")
    assert [p.split(":")[1] for p in info.value.problems] == ["2", "3", "5"]


def test_frame_beyond_the_capture_is_named(tmp_path):
    path = write(tmp_path, "l.csv", "frame;label\n2;a\n9;normal\n7;a\n")
    with pytest.raises(LabelError, match=r"l.csv:4: frame 7 is beyond the capture, which has 6"):
        read_frame_labels(path, n_frames=6)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(LabelError, match="no such label file"):
        read_frame_labels(tmp_path / "nope.csv")
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(LabelError, match="not a text file"):
        read_frame_labels(path)


def test_sidecar_gives_kinds_and_techniques(tmp_path):
    path = write(tmp_path, "run.labels.csv", "frame;label\n1;normal\n2;w1\n3;s1\n")
    sidecar = [
        {
            "name": "w1",
            "attack": "modbus_write",
            "techniques": ["T0855", "T0836"],
            "start": "2024-03-01T08:00:01Z",
            "end": "2024-03-01T08:00:01Z",
            "frames": [2, 2],
        },
        {"name": "s1", "attack": "scan", "techniques": ["T0846"], "frames": [3, 3]},
        {"name": "ghost", "attack": "scan", "frames": [9, 9]},
    ]
    write(tmp_path, "run.attacks.json", json.dumps(sidecar))
    labels = read_frame_labels(path)
    assert labels.attacks == [
        Attack("w1", "modbus_write", ("T0855", "T0836")),
        Attack("s1", "scan", ("T0846",)),
    ]
    assert any("ghost" in w for w in labels.warnings)


# --------------------------------------------------------------------------- time


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2024-03-01T08:00:00Z", T0),
        ("2024-03-01T08:00:00", T0),  # no offset: UTC
        ("2024-03-01 09:00:00+01:00", T0),
        ("2024-03-01T08:00:00.000000123Z", T0 + 123),
        ("2024-03-01T08:00:01.5Z", T0 + 3 * S // 2),
        ("1709280000", T0),
        ("1709280000.000000001", T0 + 1),
        (1709280000.25, T0 + S // 4),
        (1709280000, T0),
    ],
)
def test_parse_time(text, ns):
    assert parse_time(text) == ns


@pytest.mark.parametrize("text", ["", "yesterday", "2024-13-01T00:00:00Z", "nan", True])
def test_parse_time_rejects(text):
    with pytest.raises(ValueError):
        parse_time(text)


# --------------------------------------------------------------------------- intervals

TS = np.array([T0 + i * S for i in range(10)], dtype=np.int64)  # frame i+1 at T0 + i s


def test_interval_csv_resolves_by_timestamp_inclusive(tmp_path):
    path = write(
        tmp_path,
        "iv.csv",
        "name,start,end,techniques,attack\n"
        "stop_plc,2024-03-01T08:00:02Z,2024-03-01T08:00:04Z,T0855;T0831,stop\n"
        f"scan,{(T0 + 7 * S) / S},{(T0 + 8 * S) / S + 0.5},,\n",
    )
    labels = load_labels(path, TS)
    assert labels.format == "intervals-csv"
    assert labels.attack.tolist() == [0, 0, 1, 1, 1, 0, 0, 2, 2, 0]
    assert labels.attacks == [Attack("stop_plc", "stop", ("T0855", "T0831")), Attack("scan")]


def test_interval_json_and_sidecar_frames(tmp_path):
    path = write(
        tmp_path,
        "x.attacks.json",
        json.dumps(
            {
                "attacks": [
                    {"name": "a", "start": T0 / S + 1, "end": T0 / S + 1.5, "techniques": []},
                    # frames win over times: they need no timestamps to resolve
                    {"name": "b", "attack": "dos", "start": 0, "end": 1, "frames": [5, 6]},
                ]
            }
        ),
    )
    labels = load_labels(path, TS)
    assert labels.format == "intervals-json"
    assert labels.attack.tolist() == [0, 1, 0, 0, 2, 2, 0, 0, 0, 0]
    assert labels.attacks[1] == Attack("b", "dos")


def test_interval_outside_the_capture_is_left_out_with_a_warning(tmp_path):
    iv = read_intervals(
        write(
            tmp_path, "iv.csv", "name;start;end\nlate;2030-01-01T00:00:00Z;2030-01-02T00:00:00Z\n"
        )
    )
    labels = intervals_to_labels(iv, TS)
    assert labels.attacks == [] and not labels.attack.any()
    assert "covers no frame" in labels.warnings[0]


def test_overlapping_intervals_give_shared_frames_to_the_later_start(tmp_path):
    path = write(
        tmp_path,
        "iv.csv",
        f"name,start,end\nlong,{T0 // S},{T0 // S + 6}\ninner,{T0 // S + 2},{T0 // S + 3}\n",
    )
    labels = load_labels(path, TS)
    assert labels.attack.tolist() == [1, 1, 2, 2, 1, 1, 1, 0, 0, 0]
    assert "2 shared frames are counted for 'inner'" in labels.warnings[0]


def test_sidecar_frames_beyond_the_capture(tmp_path):
    path = write(tmp_path, "a.json", json.dumps([{"name": "a", "frames": [9, 12]}]))
    with pytest.raises(LabelError, match=r"a.json\[0\]: frame 11 is beyond the capture"):
        load_labels(path, TS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,start,end\na,5,4\n", "iv.csv:2: end is before start"),
        ("name,start,end\na,5,\n", "iv.csv:2: missing end"),
        ("name,start,end\na,soon,6\n", "iv.csv:2: start: not ISO-8601 or epoch seconds"),
        ("name,start,end\n,1,2\n", "iv.csv:2: missing attack name"),
        ("name,start,end\nnormal,1,2\n", "'normal' is a benign label, not an attack name"),
        ("name,start,end\na,1,2\na,3,4\n", "iv.csv:3: attack 'a' is named twice (also"),
        ("name,start,end,techniques\na,1,2,T9999\n", "unknown ATT&CK for ICS technique id(s)"),
        ("name,start,end\na,1,2,3\n", "iv.csv:2: 4 fields, the header has 3"),
        ("name,start,end\n", "no attacks listed"),
    ],
)
def test_interval_csv_errors(tmp_path, text, message):
    with pytest.raises(LabelError) as info:
        load_labels(write(tmp_path, "iv.csv", text), TS)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("[1, 2", "iv.json:1: not valid JSON"),
        ('{"x": 1}', 'expected a list of attacks or {"attacks": [...]}'),
        ("[3]", "iv.json[0]: expected an object, got int"),
        ('[{"name": "a", "frames": [3]}]', "iv.json[0]: frames must be [first, last]"),
        ('[{"name": "a", "frames": [0, 2]}]', "frames [0, 2] is not a 1-based range"),
        ('[{"name": "a", "start": 1, "end": 2, "techniques": 5}]', "techniques must be a list"),
    ],
)
def test_interval_json_errors(tmp_path, data, message):
    with pytest.raises(LabelError) as info:
        load_labels(write(tmp_path, "iv.json", data), TS)
    assert message in str(info.value)


def test_load_labels_dispatches_frame_csv_with_capture_bounds(tmp_path):
    path = write(tmp_path, "l.csv", "frame;label\n3;a\n")
    labels = load_labels(path, TS)
    assert labels.attack.shape == (10,) and labels.frames_of(1).tolist() == [3]
    with pytest.raises(LabelError, match="frame 3 is beyond the capture, which has 2 frames"):
        load_labels(path, TS[:2])
