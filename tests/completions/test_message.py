"""chat_core.completions.message: a completions stream entry reads back as it was written."""

from __future__ import annotations

import time

from chat_core.completions.message import CompletionMessage


def test_an_entry_reads_back_as_it_was_written_and_knows_when_it_arrived():
    before = int(time.time() * 1000)
    message = CompletionMessage.now("op-1", "task-1", False, None, "no", webhook_id="msg_1")
    assert before <= message.received_at_ms <= int(time.time() * 1000)
    again = CompletionMessage.model_validate_json(message.model_dump_json())
    assert again == message
    assert (again.success, again.error, again.result) == (False, "no", None)
