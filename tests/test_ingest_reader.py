"""The streaming JSON reader behind `nocctl ingest` (DESIGN §4): NDJSON, a JSON array, or one
or several JSON documents; bad input is reported with its line and raw text, never lost, and
never stops the good documents. Pure: no database."""
from __future__ import annotations

import io
import json
import time
import tracemalloc

import pytest

from nocctl.services.ingest import reader
from nocctl.services.ingest.reader import Document, read_documents


def read(data: bytes | str, source: str = "alerts.ndjson") -> list[Document]:
    if isinstance(data, str):
        data = data.encode()
    return list(read_documents(io.BytesIO(data), source))


def good(docs: list[Document]) -> list[tuple[int, object]]:
    return [(d.line, d.value) for d in docs if d.error is None]


def bad(docs: list[Document]) -> list[Document]:
    return [d for d in docs if d.error is not None]


# ---------------------------------------------------------------- NDJSON

def test_ndjson_with_blank_lines_keeps_one_based_line_numbers():
    docs = read('{"n": 1}\n\n{"n": 2}\n   \n\t\n{"n": 3}\n')
    assert [(d.line, d.value) for d in docs] == [(1, {"n": 1}), (3, {"n": 2}), (6, {"n": 3})]
    assert all(d.source == "alerts.ndjson" and d.error is None for d in docs)
    # The raw text travels with the document, so a record rejected later keeps its original form.
    assert [d.text for d in docs] == [b'{"n": 1}\n', b'{"n": 2}\n', b'{"n": 3}\n']


def test_ndjson_leading_blank_lines_and_crlf_and_no_final_newline():
    docs = read('\n\r\n{"n": 1}\r\n{"n": 2}')
    assert good(docs) == [(3, {"n": 1}), (4, {"n": 2})]
    assert not bad(docs)


def test_bad_json_line_is_reported_with_raw_text_and_the_rest_still_parses():
    docs = read('{"n": 1}\n{"n": 2,, oops}\n{"n": 3}\n')
    assert good(docs) == [(1, {"n": 1}), (3, {"n": 3})]
    (error,) = bad(docs)
    assert error.line == 2
    assert error.text == '{"n": 2,, oops}'
    assert "invalid JSON" in error.error
    assert error.source == "alerts.ndjson"


def test_invalid_utf8_line_is_reported_with_raw_text_and_the_rest_still_parses():
    docs = read(b'{"n": 1}\n\xff\xfe\xfa\x80garbage\x81\n{"n": 3}\n')
    assert good(docs) == [(1, {"n": 1}), (3, {"n": 3})]
    (error,) = bad(docs)
    assert error.line == 2
    assert "UTF-8" in error.error
    assert "garbage" in error.text and "\\xff" in error.text  # undecodable bytes kept, escaped


def test_broken_first_line_does_not_swallow_the_good_lines_after_it():
    # A first line that starts like an object but is broken is a bad NDJSON line, not the
    # start of a pretty-printed document that would absorb everything after it.
    docs = read('{bad json}\n{"n": 2}\n{"n": 3}\n')
    assert good(docs) == [(2, {"n": 2}), (3, {"n": 3})]
    (error,) = bad(docs)
    assert (error.line, error.text) == (1, "{bad json}")


def test_invalid_utf8_first_line_does_not_swallow_the_good_lines_after_it():
    docs = read(b'{"n": \xff}\n{"n": 2}\n')
    assert good(docs) == [(2, {"n": 2})]
    assert [d.line for d in bad(docs)] == [1]


def test_several_bad_lines_each_reported():
    docs = read('nope\n{"n": 2}\n[unclosed\n]\n{"n": 5}\n')  # "[" only opens an array on the first line
    assert good(docs) == [(2, {"n": 2}), (5, {"n": 5})]
    assert [(d.line, d.text) for d in bad(docs)] == [(1, "nope"), (3, "[unclosed"), (4, "]")]


def test_ndjson_scalars_and_arrays_are_passed_through():
    # what a document means is for the formats to decide; the reader only parses
    docs = read('"text"\n5\n[1, 2]\n')
    assert good(docs) == [(1, "text"), (2, 5), (3, [1, 2])]


def test_utf8_byte_order_mark_is_ignored():
    assert good(read(b'\xef\xbb\xbf{"n": 1}\n{"n": 2}\n')) == [(1, {"n": 1}), (2, {"n": 2})]
    assert good(read(b'\xef\xbb\xbf[\n  {"n": 1},\n  {"n": 2}\n]\n')) == [(2, {"n": 1}), (3, {"n": 2})]
    assert good(read(b'\xef\xbb\xbf{\n  "n": 1\n}\n')) == [(1, {"n": 1})]


# ---------------------------------------------------------------- top-level array

def test_one_line_array_yields_its_elements():
    docs = read('[{"n": 1}, {"n": 2}, "x", 4]\n')
    assert [(d.line, d.value) for d in docs] == [(1, {"n": 1}), (1, {"n": 2}), (1, "x"), (1, 4)]


def test_pretty_printed_array_yields_elements_with_the_line_each_starts_on():
    text = json.dumps([{"n": 1, "tags": ["a", "b"]}, {"n": 2}, {"n": 3, "m": {"k": "v"}}], indent=2)
    lines = text.split("\n")
    expected = [number for number, line in enumerate(lines, start=1) if line.startswith("  {")]
    docs = read("\n" + text + "\n")  # a leading blank line shifts every element by one
    assert [d.value for d in docs] == [{"n": 1, "tags": ["a", "b"]}, {"n": 2}, {"n": 3, "m": {"k": "v"}}]
    assert [d.line for d in docs] == [n + 1 for n in expected]
    assert not bad(docs)


def test_array_elements_on_shared_and_separate_lines():
    docs = read('[{"n": 1},\n{"n": 2}, {"n": 3},\n\n{"n": 4}]\n')
    assert good(docs) == [(1, {"n": 1}), (2, {"n": 2}), (2, {"n": 3}), (4, {"n": 4})]


def test_empty_array_yields_nothing():
    assert read("[]\n") == []
    assert read("[\n]\n") == []


def test_truncated_array_after_a_complete_element_is_reported():
    docs = read('[\n  {"n": 1},\n  {"n": 2},\n')
    assert good(docs) == [(2, {"n": 1}), (3, {"n": 2})]
    (error,) = bad(docs)
    assert "not closed" in error.error


def test_truncated_array_element_is_reported_with_its_raw_text():
    docs = read('[\n  {"n": 1},\n  {"n": 2, "message":\n    "cut off her')
    assert good(docs) == [(2, {"n": 1})]
    (error,) = bad(docs)
    assert error.line == 3
    assert error.text.startswith('{"n": 2, "message":')
    assert "cut off her" in error.text


def test_trailing_junk_after_the_array_is_reported_with_its_text():
    docs = read('[{"n": 1}, {"n": 2}] and then some\n')
    assert good(docs) == [(1, {"n": 1}), (1, {"n": 2})]
    (error,) = bad(docs)
    assert error.line == 1
    assert error.text == "and then some"
    assert "after the closing ]" in error.error


def test_everything_after_the_array_is_kept_not_just_the_first_piece():
    long_record = json.dumps({"n": 3, "message": "x" * 500})
    docs = read(f'[{{"n": 1}}]\n\n{{"n": 2}}\n{long_record}\n')
    assert good(docs) == [(1, {"n": 1})]
    (error,) = bad(docs)
    assert error.line == 3  # where the trailing text starts
    assert error.text == '{"n": 2}\n' + long_record  # whole, so `rejects retry` can still use it
    assert good(read(error.text)) == [(1, {"n": 2}), (2, {"n": 3, "message": "x" * 500})]


def test_broken_element_in_the_middle_costs_only_itself():
    docs = read('[\n{"n": 1},\n{"n": 2 "oops"},\n{"n": 3}\n]\n')
    assert good(docs) == [(2, {"n": 1}), (4, {"n": 3})]
    (error,) = bad(docs)
    assert (error.line, error.text) == (3, '{"n": 2 "oops"}')
    assert "invalid JSON" in error.error


def test_broken_elements_with_brackets_and_commas_inside_strings_are_skipped_exactly():
    docs = read('[{"a": "x,]}{[" oops}, {"b": "\\"]" x} , nope, {"n": 4}]')
    assert good(docs) == [(1, {"n": 4})]
    assert [d.text for d in bad(docs)] == ['{"a": "x,]}{[" oops}', '{"b": "\\"]" x}', "nope"]


# ---------------------------------------------------------------- single and concatenated documents

def test_one_pretty_printed_document():
    payload = {"version": "4", "status": "firing", "alerts": [{"labels": {"alertname": "HostDown"}}]}
    docs = read(json.dumps(payload, indent=2) + "\n")
    assert [(d.line, d.value) for d in docs] == [(1, payload)]


def test_several_concatenated_pretty_printed_documents():
    a, b, c = {"n": 1, "deep": {"x": [1, {"y": 2}]}}, {"n": 2}, {"n": 3}
    text = json.dumps(a, indent=2) + "\n" + json.dumps(b, indent=4) + "\n\n" + json.dumps(c) + "\n"
    line_b = json.dumps(a, indent=2).count("\n") + 2
    line_c = line_b + json.dumps(b, indent=4).count("\n") + 2
    docs = read(text)
    assert [(d.line, d.value) for d in docs] == [(1, a), (line_b, b), (line_c, c)]


def test_concatenated_documents_on_one_line():
    assert good(read('{"n": 1} {"n": 2}{"n": 3}\n')) == [(1, {"n": 1}), (1, {"n": 2}), (1, {"n": 3})]


def test_truncated_pretty_printed_document_is_reported_with_its_raw_text():
    text = '{\n  "n": 1\n}\n{\n  "n": 2,\n  "message": "cut'
    docs = read(text)
    assert good(docs) == [(1, {"n": 1})]
    (error,) = bad(docs)
    assert error.line == 4
    assert error.text == '{\n  "n": 2,\n  "message": "cut'


def test_oversized_document_is_given_up_on_without_losing_what_follows():
    body = [f'  "k{i}": "{"v" * 20}",' for i in range(20)]  # an object that is never closed
    text = "\n".join(["{", *body, '{"after": 1}', '{"after": 2}']) + "\n"
    docs = list(read_documents(io.BytesIO(text.encode()), "doc.json", max_record=200))
    (error,) = bad(docs)
    assert error.line == 1 and error.text == text[:200]  # the head of it, up to the limit
    assert "larger than the 200 bytes limit" in error.error
    # the documents after it still come through
    assert good(docs) == [(22, {"after": 1}), (23, {"after": 2})]


# ---------------------------------------------------------------- sizes, empty input, streaming

def test_ten_megabyte_single_line_object_parses_under_a_raised_limit():
    record = {"alert_type": "X", "message": "m" * (10 * 1024 * 1024)}
    data = (json.dumps(record) + "\n").encode()
    (doc,) = read_documents(reader.pieces(io.BytesIO(data)), "-", max_record=16 * 1024 * 1024)
    assert doc.error is None and doc.value == record


def test_ten_megabyte_single_line_array_parses():
    element = {"alert_type": "DEVICE_OFFLINE", "severity": "HIGH", "message": "x" * 1000, "site": "S"}
    count = 10 * 1024 * 1024 // len(json.dumps(element))
    data = json.dumps([element] * count).encode()
    assert len(data) >= 10 * 1024 * 1024 - 2000
    start = time.perf_counter()
    docs = list(read_documents(io.BytesIO(data), "big.json"))
    assert len(docs) == count and all(d.error is None and d.line == 1 for d in docs)
    assert docs[-1].value == element
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("data", [b"", b"\n", b"   \n\t\n\r\n  ", b"\n" * 1000])
def test_empty_and_whitespace_only_input_yield_nothing(data):
    assert read(data) == []


class CountingLines:
    """A generator of NDJSON lines (or of a pretty array) that records how many it has handed out."""

    TEMPLATE = (b'{"alert_type": "DEVICE_OFFLINE", "severity": "HIGH", "message": "device %d offline",'
                b' "site": "ACME-BLR", "entity_id": "T-%d"}')

    def __init__(self, total: int, array: bool = False):
        self.total, self.array, self.consumed = total, array, 0

    def __iter__(self):
        if self.array:
            yield b"[\n"
        last = self.total - 1
        for i in range(self.total):
            self.consumed += 1
            yield self.TEMPLATE % (i, i) + (b",\n" if self.array and i < last else b"\n")
        if self.array:
            yield b"]\n"


@pytest.mark.parametrize("array", [False, True], ids=["ndjson", "array"])
def test_streaming_documents_come_out_lazily_and_memory_stays_flat(array):
    lines = CountingLines(200_000, array=array)
    documents = read_documents(iter(lines), "-")
    first = next(documents)
    assert first.value["entity_id"] == "T-0"
    assert lines.consumed <= 2, "the reader read ahead instead of streaming"

    count, last, growth = 1, first, None
    for count, doc in enumerate(documents, start=2):
        # never more than a line or two ahead of what it has produced
        assert lines.consumed <= count + 1, f"document {count}: {lines.consumed} lines already read"
        if count == 100_000:
            tracemalloc.start()
            baseline = tracemalloc.get_traced_memory()[0]
        elif count == 120_000:
            growth = tracemalloc.get_traced_memory()[1] - baseline
            tracemalloc.stop()
        last = doc
    assert count == 200_000 and lines.consumed == 200_000
    assert last.error is None and last.value["entity_id"] == "T-199999"
    assert last.line == (200_001 if array else 200_000)
    # 20,000 more records (~3 MB of text) read while traced: a streaming reader holds a
    # few lines at a time, so its memory does not grow with them
    assert growth is not None and growth < 500_000, f"memory grew by {growth} bytes over 20,000 records"
