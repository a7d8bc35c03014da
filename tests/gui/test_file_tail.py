"""FileTailer: offsets, bad bytes, huge lines, truncation, deletion. No Qt needed."""

from __future__ import annotations

import os

from mltrain_desktop.gui.widgets.file_tail import FileTailer


def test_missing_file_then_created(tmp_path):
    p = tmp_path / "driver.log"
    t = FileTailer(p)
    assert t.read() == "" and not t.exists
    p.write_bytes(b"hello\n")
    assert t.read() == "hello\n" and t.exists
    assert t.read() == ""
    with open(p, "ab") as f:
        f.write(b"world\n")
    assert t.read() == "world\n"
    assert t.offset == 12


def test_non_utf8_bytes_replaced(tmp_path):
    p = tmp_path / "x.log"
    p.write_bytes(b"ok \xff\xfe bad \xc3\x28 end\n")
    text = FileTailer(p).read()
    assert text.startswith("ok ") and text.endswith(" end\n")
    assert "\ufffd" in text


def test_multibyte_char_split_between_reads(tmp_path):
    p = tmp_path / "x.log"
    euro = "\u20ac".encode()  # 3 bytes
    p.write_bytes(b"a" + euro[:2])
    t = FileTailer(p)
    assert t.read() == "a"  # the incomplete character is held back, not replaced
    with open(p, "ab") as f:
        f.write(euro[2:] + b"b\n")
    assert t.read() == "\u20acb\n"


def test_one_megabyte_line(tmp_path):
    p = tmp_path / "x.log"
    line = b"x" * (1024 * 1024) + b"\n"
    p.write_bytes(b"before\n" + line + b"after\n")
    t = FileTailer(p)
    text = t.read()
    assert len(text) == 7 + len(line) + 6
    assert text.endswith("after\n")


def test_bounded_reads_catch_up(tmp_path):
    p = tmp_path / "x.log"
    p.write_bytes(b"0123456789" * 100)
    t = FileTailer(p, max_bytes=64)
    first = t.read()
    assert len(first) == 64 and not t.at_eof
    rest = t.read_all()
    assert first + rest == "0123456789" * 100 and t.at_eof


def test_truncation_restarts_from_zero(tmp_path):
    p = tmp_path / "x.log"
    p.write_bytes(b"old line 1\nold line 2\n")
    t = FileTailer(p)
    assert t.read().count("\n") == 2
    p.write_bytes(b"new\n")  # truncated by a restarted job ("w" mode)
    assert t.read() == "new\n"
    assert t.was_reset and t.reset_count == 1
    assert t.read() == "" and not t.was_reset


def test_deleted_then_recreated(tmp_path):
    p = tmp_path / "x.log"
    p.write_bytes(b"first file, quite long\n")
    t = FileTailer(p)
    t.read()
    os.remove(p)
    assert t.read() == "" and not t.exists
    p.write_bytes(b"second file, even longer than that\n")  # larger than the old offset
    assert t.read() == "second file, even longer than that\n"
    assert t.was_reset


def test_replaced_by_rename(tmp_path):
    p = tmp_path / "x.log"
    p.write_bytes(b"aaaa\n")
    t = FileTailer(p)
    t.read()
    other = tmp_path / "new.log"
    other.write_bytes(b"bbbbbbbbbbbb\n")
    keep = tmp_path / "keep.log"
    os.rename(p, keep)  # keep the old inode alive so the new file cannot reuse it
    os.rename(other, p)
    assert t.read() == "bbbbbbbbbbbb\n" and t.was_reset


def test_start_offset(tmp_path):
    p = tmp_path / "x.log"
    p.write_bytes(b"skip me\nread me\n")
    assert FileTailer(p, offset=8).read() == "read me\n"
