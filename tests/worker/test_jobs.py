"""chat_core.worker.jobs: the worker's jobs as the JSON an async invocation carries. Every kind
survives the trip, and anything else is refused before a worker acts on it."""

from __future__ import annotations

import pytest
from chat_core.worker.jobs import ContinueOperation, DrainCompletions, RunTool, RunTurn, parse_job
from pydantic import ValidationError

JOBS = [
    RunTurn(task_id="t1", context={"page": "/library"}, message_id="msg-1"),
    RunTool(task_id="t2"),
    ContinueOperation(task_id="t3"),
    DrainCompletions(),
]


@pytest.mark.parametrize("job", JOBS, ids=lambda job: job.kind)
def test_a_job_comes_back_the_same_from_its_payload(job) -> None:
    assert parse_job(job.model_dump()) == job
    assert parse_job(job.model_dump_json()) == job
    assert parse_job(job.model_dump_json().encode()) == job


def test_the_kind_names_the_job() -> None:
    assert parse_job({"kind": "continue_operation", "task_id": "t3"}) == ContinueOperation(
        task_id="t3"
    )
    assert RunTurn(task_id="t").model_dump()["kind"] == "run_turn"


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": "delete_everything", "task_id": "t1"},
        {"task_id": "t1"},
        {"kind": "run_turn"},
        "not json",
    ],
)
def test_anything_else_is_refused(payload) -> None:
    with pytest.raises(ValidationError):
        parse_job(payload)
