"""chat_core.protocol.sse: the SSE framing of stream entries, heartbeats and the end."""

from __future__ import annotations

from chat_core.protocol.sse import DONE, HEADERS, HEARTBEAT, encode_entry


def test_sse_framing():
    assert encode_entry("1-0", '{"type":"finish"}') == b'id: 1-0\ndata: {"type":"finish"}\n\n'
    assert HEARTBEAT.encode() == b": heartbeat\n\n"
    assert DONE.encode() == b"data: [DONE]\n\n"


def test_a_line_break_in_the_data_is_split_into_data_lines_the_reader_joins_back():
    # A raw line break would end the `data:` field early and corrupt the event.
    assert encode_entry("1-0", "a\nb") == b"id: 1-0\ndata: a\ndata: b\n\n"
    assert encode_entry("2-0", "a\r\nb") == b"id: 2-0\ndata: a\ndata: b\n\n"


def test_an_entry_without_an_id_has_no_id_line():
    # No `id:` means the reader's Last-Event-ID stays where it was.
    assert encode_entry(None, '{"type":"finish"}') == b'data: {"type":"finish"}\n\n'
    assert encode_entry("", "x") == b"data: x\n\n"


def test_the_headers_name_the_protocol_and_keep_proxies_from_buffering():
    assert HEADERS["x-vercel-ai-ui-message-stream"] == "v1"
    assert HEADERS["X-Accel-Buffering"] == "no" and HEADERS["Cache-Control"] == "no-cache"
