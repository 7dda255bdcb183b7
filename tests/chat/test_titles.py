"""chat_core.chat.titles: a session's title is asked of the title model over real HTTP (the
scripted model), cleaned to 3–6 words within 50 characters, and made from the message itself
when the model fails, so no session stays untitled."""

from __future__ import annotations

import pytest
from chat_core.chat.titles import (
    MAX_TITLE_CHARS,
    TITLE_INSTRUCTIONS,
    clean_title,
    fallback_title,
    generate_title,
)

ROME = "Can you help me plan a two week trip to Rome in May?"


async def test_the_title_model_is_asked_and_its_answer_is_the_title(model, settings_env):
    settings_env(title_model="title-model-x")
    model.reply_text("Planning A Rome Trip", stream=False)
    assert await generate_title(ROME, user_id="u1", session_id="s1") == "Planning A Rome Trip"
    [request] = model.chat_requests
    assert request.body["model"] == "title-model-x" and not request.streaming
    assert request.system_prompt == TITLE_INSTRUCTIONS
    assert request.messages[-1] == {"role": "user", "content": ROME}


async def test_a_long_first_message_is_cut_before_it_is_sent(model):
    await generate_title("word " * 400)
    assert len(model.chat_requests[0].messages[-1]["content"]) == 500


async def test_a_chatty_answer_is_cleaned_to_a_title(model):
    model.reply_text('"Planning a two week trip to Rome in May!"', stream=False)
    assert await generate_title(ROME) == "Planning a two week trip to"


@pytest.mark.parametrize("failure", ["error", "empty"])
async def test_when_the_model_fails_the_title_comes_from_the_message(model, failure):
    if failure == "error":
        model.reply_error(400, message="no titles today", stream=False)
    else:
        model.reply_text("", stream=False)
    assert await generate_title(ROME) == "Plan Two Week Trip Rome"


def test_a_title_is_at_most_fifty_characters() -> None:
    title = clean_title("Supercalifragilistic Expialidocious Antidisestablishmentarianism Words")
    assert len(title) <= MAX_TITLE_CHARS and title.endswith("…")


def test_a_message_of_only_filler_is_a_new_chat() -> None:
    assert fallback_title("Hi, can you help me?") == "New chat"
