"""Time-series file readers: round trips on tiny hand-written files, bad input, label encoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anyssl.modalities.timeseries.io import (
    SeriesArrays,
    align_splits,
    encode_labels,
    read_numpy,
    read_series,
    read_split,
    read_train_test,
)
from anyssl.modalities.timeseries.io_text import read_csv, read_ts, read_tsv

NAN = np.nan
UCR_GUNPOINT = Path("/work/shared/datasets/ucr/GunPoint")


def write(folder: Path, name: str, text: str) -> Path:
    p = folder / name
    p.write_text(text)
    return p


def ts_file(folder: Path, name: str, header: str, data: str) -> Path:
    return write(folder, name, header.strip() + "\n@data\n" + data.strip() + "\n")


UNI_HEADER = """
# a comment
@problemName Toy
@timeStamps false
@missing false
@univariate true
@equalLength true
@seriesLength 3
@classLabel true a b
"""


# ---- .ts ------------------------------------------------------------------------------------
def test_ts_univariate_values_and_labels(tmp_path: Path) -> None:
    p = ts_file(tmp_path, "Toy_TRAIN.ts", UNI_HEADER, "1,2,3:a\n# inside\n4.5,-1,0:b\n\n")
    out = read_ts(p)
    assert out.X.dtype == np.float32 and out.X.shape == (2, 1, 3)
    np.testing.assert_array_equal(out.X[:, 0], [[1, 2, 3], [4.5, -1, 0]])
    assert out.labels == ["a", "b"] and out.source == str(p)


def test_ts_multivariate_unequal_missing(tmp_path: Path) -> None:
    header = """@problemName M\n@missing true\n@univariate false\n@dimensions 2
@equalLength false\n@classLabel true up down"""
    data = "1,?,3:4,5:up\n6:NaN,7,8,9:down\n"
    out = read_ts(ts_file(tmp_path, "m.ts", header, data))
    expected = np.array([[[1, NAN, 3, NAN], [4, 5, NAN, NAN]],
                         [[6, NAN, NAN, NAN], [NAN, 7, 8, 9]]], dtype=np.float32)
    np.testing.assert_array_equal(out.X, expected)  # NaN == NaN positions too
    assert out.labels == ["up", "down"]


def test_ts_unlabelled_and_regression(tmp_path: Path) -> None:
    out = read_ts(ts_file(tmp_path, "u.ts", "@univariate true\n@classLabel false", "1,2\n3,4"))
    assert out.labels is None
    np.testing.assert_array_equal(out.X[:, 0], [[1, 2], [3, 4]])
    reg = read_ts(ts_file(tmp_path, "r.ts", "@targetLabel true", "1,2:0.5\n3,4:-2"))
    assert reg.labels is None and reg.targets is not None
    np.testing.assert_array_equal(reg.targets, [0.5, -2.0])


@pytest.mark.parametrize("header, data, message", [
    (UNI_HEADER, "1,2,3:a\n1,2,3:b\n1,2,3:4,5,6:a",
     "line 12: 2 channels but @univariate true says 1"),
    ("@dimensions 2\n@classLabel false", "1,2:3,4\n1:2:3",
     "line 5: 3 channels but @dimensions says 2"),
    (UNI_HEADER, "1,2,3:a\n1,2:b", "line 11: channel 1 has 2 values but @seriesLength says 3"),
    (UNI_HEADER, "1,2,3:a\n1,2,3:c",
     "line 11: class label 'c' is not in the @classLabel list (a b)"),
    ("@equalLength true\n@classLabel false", "1,2:3,4\n1,2,3:3,4,5",
     "line 5: channel 1 has 3 values but @equalLength true and line 4 has 2"),
    ("@classLabel false", "1,2:3,4\n1,2", "line 4: 1 channels but the first series (line 3) has 2"),
    ("@classLabel false", "1,2\n?,NaN\n", "line 4: the series has no observed value"),
    ("@classLabel false", "1,x", "line 3 channel 1: cannot read 'x' as a number"),
    ("@classLabel true", "1,2", "line 3: no ':label' at the end of the line"),
    ("@classLabel false", "1,2\n@missing true", "line 4: header line after @data"),
    ("@classLabel maybe", "1,2", "line 1: @classlabel needs true or false"),
    ("@timeStamps true", "(0,1),(1,2)",
     "line 1: @timeStamps true (timestamped series) is not supported"),
    ("@classLabel true 1 2", "1,2:1\n3,4:x\n5,6:2", "label 'x' is not in the @classLabel list"),
    ("@classLabel true", "1,2:1\n3,4:x\n5,6:2",
     "line 4: label 'x' is not a number but the other labels are numbers"),
])
def test_ts_bad_input_names_file_and_line(tmp_path: Path, header: str, data: str,
                                          message: str) -> None:
    p = ts_file(tmp_path, "Bad_TRAIN.ts", header, data)
    with pytest.raises(ValueError) as err:
        read_ts(p)
    text = str(err.value)
    assert text.startswith(str(p)) and message in text and "\n" not in text


def test_ts_no_data(tmp_path: Path) -> None:
    p = write(tmp_path, "a.ts", "@problemName x\n@classLabel false\n")
    with pytest.raises(ValueError, match="no @data line"):
        read_ts(p)
    q = ts_file(tmp_path, "b.ts", "@classLabel false", "# only a comment")
    with pytest.raises(ValueError, match=r"b\.ts: no data lines"):
        read_ts(q)
    r = write(tmp_path, "c.ts", "1,2,3\n@data\n")
    with pytest.raises(ValueError, match=r"c\.ts line 1: data before @data"):
        read_ts(r)


# ---- .tsv -----------------------------------------------------------------------------------
def test_tsv_tabs_commas_and_unequal_length(tmp_path: Path) -> None:
    tab = read_tsv(write(tmp_path, "a.tsv", "2\t1.5\t2\t3\n10\t4\t5\tNaN\n1\t6\t\t\n"))
    np.testing.assert_array_equal(tab.X[:, 0], [[1.5, 2, 3], [4, 5, NAN], [6, NAN, NAN]])
    assert tab.labels == ["2", "10", "1"]
    comma = read_series(write(tmp_path, "b.tsv", "2,1.5,2,3\n10,4,5,NaN\n1,6,,\n"))
    np.testing.assert_array_equal(comma.X, tab.X)
    assert comma.labels == tab.labels


@pytest.mark.parametrize("text, message", [
    ("1\t1\t2\n2\tNaN\tNaN\n", "line 2: the series has no observed value"),
    ("1\t1\t2\nb\t1\t2\n3\t4\t5\n", "line 2: label 'b' is not a number but the other labels"),
    ("a\t1\t2\nb\t1\t2\n3\t4\t5\n",
     "line 3: label '3' is a number but the other labels are strings"),
    ("1\t1\t2\n\t1\t2\n", "line 2: no class label"),
    ("1\t1\tinf\n", "line 1: infinite value"),
    ("\n\n", "no data lines"),
])
def test_tsv_bad_input(tmp_path: Path, text: str, message: str) -> None:
    p = write(tmp_path, "Bad_TEST.tsv", text)
    with pytest.raises(ValueError) as err:
        read_tsv(p)
    assert str(err.value).startswith(str(p)) and message in str(err.value)


# ---- numpy ----------------------------------------------------------------------------------
def test_npy_layouts(tmp_path: Path) -> None:
    x2 = np.array([[1, 2, 3], [4, 5, NAN]])
    np.save(tmp_path / "a.npy", x2)
    out = read_numpy(tmp_path / "a.npy")
    assert out.X.shape == (2, 1, 3) and out.labels is None
    np.testing.assert_array_equal(out.X[:, 0], x2)
    x3 = np.arange(2 * 4 * 3, dtype=np.float64).reshape(2, 4, 3)  # N x T x C
    np.save(tmp_path / "b.npy", x3)
    out3 = read_series(tmp_path / "b.npy")
    assert out3.X.shape == (2, 3, 4)
    assert out3.X[1, 2, 3] == x3[1, 3, 2] and out3.X[0, 1, 0] == x3[0, 0, 1]


def test_npz_keys_and_labels(tmp_path: Path) -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    np.savez(tmp_path / "a.npz", X=x, y=np.array([3, 1, 3]))
    out = read_series(tmp_path / "a.npz")
    np.testing.assert_array_equal(out.X[:, 0], x)
    assert out.labels == ["3", "1", "3"]
    np.savez(tmp_path / "b.npz", x=x[..., None], y=np.array(["cat", "dog", "cat"]))
    assert read_numpy(tmp_path / "b.npz").labels == ["cat", "dog", "cat"]
    np.savez(tmp_path / "c.npz", x=x, y=np.array([1.0, 2.0, 1.0]))
    assert read_numpy(tmp_path / "c.npz").labels == ["1", "2", "1"]


@pytest.mark.parametrize("arrays, message", [
    ({"X": np.zeros(3)}, "X must be a non-empty numeric N x T or N x T x C array"),
    ({"X": np.zeros((2, 3)), "y": np.zeros(3)}, "y must have shape (2,)"),
    ({"Z": np.zeros((2, 3))}, "no array named 'X' or 'x' (found Z)"),
    ({"X": np.array([[1.0, 2.0], [NAN, NAN]])}, "series 1 (0-based): the series has no observed"),
    ({"X": np.zeros((2, 3)), "y": np.array([1.0, NAN])}, "label nan is not a class label"),
])
def test_npz_bad_input(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    np.savez(tmp_path / "bad.npz", **arrays)  # type: ignore[arg-type]
    with pytest.raises(ValueError) as err:
        read_numpy(tmp_path / "bad.npz")
    assert str(tmp_path / "bad.npz") in str(err.value) and message in str(err.value)


# ---- CSV ------------------------------------------------------------------------------------
def test_csv_without_header_or_labels(tmp_path: Path) -> None:
    out = read_csv(write(tmp_path, "a.csv", "1,2,3\n4,5,\n"))
    assert out.labels is None
    np.testing.assert_array_equal(out.X[:, 0], [[1, 2, 3], [4, 5, NAN]])


def test_csv_label_column_by_header_name_and_index(tmp_path: Path) -> None:
    p = write(tmp_path, "b.csv", "t0,t1,Class\n1,2,x\n3,4,y\n")
    out = read_csv(p)  # "Class" found by name
    np.testing.assert_array_equal(out.X[:, 0], [[1, 2], [3, 4]])
    assert out.labels == ["x", "y"]
    assert read_csv(p, label_column=-1).labels == ["x", "y"]
    p2 = write(tmp_path, "b2.csv", "t0,t1,t2\n1,2,3\n4,5,6\n")
    assert read_csv(p2).labels is None and read_csv(p2).X.shape == (2, 1, 3)
    named = read_csv(p2, label_column="t0")
    assert named.labels == ["1", "4"]
    np.testing.assert_array_equal(named.X[:, 0], [[2, 3], [5, 6]])
    with pytest.raises(ValueError, match=r"b\.csv line 2: cannot read 'x'.*set label_column"):
        read_csv(p, label_column=None)
    num = read_csv(write(tmp_path, "d.csv", "0,1,label\n5,6,a\n7,8,b\n"))  # numeric names
    assert num.labels == ["a", "b"]
    np.testing.assert_array_equal(num.X[:, 0], [[5, 6], [7, 8]])
    q = write(tmp_path, "c.csv", "a,1,2\nb,3,4\n")  # no header; labels first
    out_q = read_series(q, label_column=0)
    assert out_q.labels == ["a", "b"]
    np.testing.assert_array_equal(out_q.X[:, 0], [[1, 2], [3, 4]])
    with pytest.raises(ValueError, match=r"c\.csv: no column named 'kind'"):
        read_csv(q, label_column="kind")


# ---- dispatch and folders -------------------------------------------------------------------
def test_read_series_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError,
                       match=r"x\.arff: unknown series file suffix '\.arff'; use one of"):
        read_series(write(tmp_path, "x.arff", "1"))
    for name in ("gone.ts", "gone.tsv", "gone.csv", "gone.npz"):
        with pytest.raises(ValueError, match=rf"gone\.{name[5:]}: no such file"):
            read_series(tmp_path / name)


def test_read_split_name_folder(tmp_path: Path) -> None:
    root = tmp_path / "Toy"
    root.mkdir()
    ts_file(root, "Toy_TRAIN.ts", UNI_HEADER, "1,2,3:a\n4,5,6:b")
    write(root, "Toy_TEST.tsv", "b\t7\t8\t9\n")
    train, test = read_train_test(root)
    assert train.source.endswith("Toy_TRAIN.ts") and test.source.endswith("Toy_TEST.tsv")
    np.testing.assert_array_equal(test.X[:, 0], [[7, 8, 9]])
    assert test.labels == ["b"]


def test_read_split_npz_and_npy_names(tmp_path: Path) -> None:
    np.savez(tmp_path / "train.npz", X=np.ones((2, 3)), y=np.array([0, 1]))
    assert read_split(tmp_path, "train").labels == ["0", "1"]
    np.save(tmp_path / "X_test.npy", np.zeros((4, 3, 2)))
    np.save(tmp_path / "y_test.npy", np.array([1, 0, 1, 1]))
    test = read_split(tmp_path, "test")
    assert test.X.shape == (4, 2, 3) and test.labels == ["1", "0", "1", "1"]


def test_read_split_missing_file(tmp_path: Path) -> None:
    root = tmp_path / "Half"
    root.mkdir()
    write(root, "Half_TRAIN.tsv", "1\t1\t2\n")
    with pytest.raises(ValueError,
                       match=r"Half: no test file; expected Half_TEST\.ts or Half_TEST\.tsv"):
        read_train_test(root)


def arrays(x: list[list[float]], labels: list[str] | None, source: str) -> SeriesArrays:
    return SeriesArrays(np.array(x, dtype=np.float32)[:, None, :], labels, source)


def test_align_splits_pads_and_checks() -> None:
    tr, te = align_splits(arrays([[1, 2]], ["a"], "tr.ts"), arrays([[1, 2, 3, 4]], ["b"], "te.ts"))
    assert tr.X.shape == te.X.shape == (1, 1, 4)
    np.testing.assert_array_equal(tr.X[0, 0], [1, 2, NAN, NAN])
    with pytest.raises(ValueError, match=r"te\.ts: no labels but tr\.ts has labels"):
        align_splits(arrays([[1.0]], ["a"], "tr.ts"), arrays([[1.0]], None, "te.ts"))
    with pytest.raises(ValueError, match=r"tr\.ts: no labels but te\.ts has labels"):
        align_splits(arrays([[1.0]], None, "tr.ts"), arrays([[1.0]], ["a"], "te.ts"))
    two = SeriesArrays(np.ones((1, 2, 3), dtype=np.float32), None, "te.ts")
    with pytest.raises(ValueError, match=r"te\.ts: 2 channels but tr\.ts has 1"):
        align_splits(arrays([[1.0]], None, "tr.ts"), two)


# ---- labels ---------------------------------------------------------------------------------
def test_encode_labels_numeric_order_and_union() -> None:
    y_tr, y_te, classes = encode_labels(["10", "2", "2"], ["1.0", "-3", "10"])
    assert classes == ["-3", "1", "2", "10"]
    assert y_tr.dtype == np.int64 and y_tr.tolist() == [3, 2, 2] and y_te.tolist() == [1, 0, 3]
    y_s, _, names = encode_labels(["b", "a", "c"])
    assert names == ["a", "b", "c"] and y_s.tolist() == [1, 0, 2]


def test_encode_labels_mixed_kinds() -> None:
    with pytest.raises(ValueError, match=r"TEST\.tsv: label 'x' is not a number unlike the "
                                         r"labels of TRAIN\.tsv"):
        encode_labels(["1", "2"], ["x"], ("TRAIN.tsv", "TEST.tsv"))
    with pytest.raises(ValueError, match=r"TRAIN\.tsv series 1 \(0-based\): label 'x' is not a"):
        encode_labels(["1", "x", "2"], ["1"], ("TRAIN.tsv", "TEST.tsv"))


@pytest.mark.skipif(not UCR_GUNPOINT.is_dir(),
                    reason=f"{UCR_GUNPOINT} (the UCR GunPoint .ts/.tsv copy) is absent")
def test_gunpoint_ts_and_tsv_agree() -> None:
    for split in ("TRAIN", "TEST"):
        ts = read_series(UCR_GUNPOINT / f"GunPoint_{split}.ts")
        tsv = read_series(UCR_GUNPOINT / f"GunPoint_{split}.tsv")
        assert ts.X.shape == tsv.X.shape == ((50 if split == "TRAIN" else 150), 1, 150)
        np.testing.assert_array_equal(ts.X, tsv.X)
        assert ts.labels == tsv.labels and set(ts.labels or []) == {"1", "2"}
