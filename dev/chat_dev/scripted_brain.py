"""What the scripted model says when no test scripted it: deterministic, read off the request.

    from chat_dev.scripted_brain import answer
    reply = answer({
        "messages": [{"role": "user", "content": "Find an agent. Use the query 'tax returns'"}],
        "tools": [{"type": "function", "function": {"name": "find_agent", "parameters": {}}}],
    })
    reply.tool_calls[0].arguments        # {"query": "tax returns"}

The rules, first match wins:
- a non-streaming request whose system message asks for a title → a short Title Case title;
- a non-streaming request whose system message asks for a summary → a one-paragraph summary
  of the user's requests in the transcript it was given;
- the last message is a tool result → an answer built from the latest tool call results;
- the user asks to find an agent and `find_agent` is offered → call it with a query;
- the user asks to create an agent and `create_agent` is offered → call it;
- the user asks to think it through → a few lines of reasoning (streamed as `reasoning`),
  then the answer;
- the user asks for Markdown → an answer with bold, a list, a code block, a table, a link;
- otherwise a friendly answer of a few sentences about what the user said.

The keyless dev server shows these answers to people, so they read like a polite assistant;
the same input always gives the same answer, so tests can rely on them.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Request = Mapping[str, Any]
"""A chat completions request body, as the client sent it."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    """A string is sent as is, so a test can script arguments that are not valid JSON."""
    id: str | None = None
    """None: the server makes a fresh `call_…` id for every answer."""

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, ensure_ascii=False)


@dataclass(frozen=True)
class Reply:
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str = ""
    """Streamed before the text, as OpenRouter's `delta.reasoning` (or `reasoning_field`)."""
    reasoning_field: str = "reasoning"


@dataclass(frozen=True)
class ToolResult:
    name: str
    arguments: dict[str, Any]
    content: str


def answer(request: Request) -> Reply:
    messages: list[Mapping[str, Any]] = list(request.get("messages") or [])
    if not request.get("stream") and _asks_for_title(messages):
        return Reply(text=title_for(last_user_text(messages)))
    if not request.get("stream") and _asks_for_summary(messages):
        return Reply(text=summary_for(last_user_text(messages)))
    if messages and messages[-1].get("role") == "tool":
        return Reply(text=explain_tool_results(latest_tool_results(messages)))
    user_text = last_user_text(messages)
    offered = offered_tool_names(request)
    intent = agent_intent(user_text)
    if intent == "find" and "find_agent" in offered:
        return Reply(tool_calls=(ToolCall("find_agent", {"query": search_query(user_text)}),))
    if intent == "create" and "create_agent" in offered:
        return Reply(tool_calls=(ToolCall("create_agent", {"description": user_text.strip()}),))
    if _THINK.search(user_text):
        return Reply(reasoning=reasoning_for(user_text), text=friendly_answer(user_text, offered))
    if _MARKDOWN.search(user_text):
        return Reply(text=MARKDOWN_ANSWER)
    return Reply(text=friendly_answer(user_text, offered, intent))


_THINK = re.compile(r"\bthink\b|\breason(?:ing)?\b", re.I)
_MARKDOWN = re.compile(r"\bmarkdown\b", re.I)

MARKDOWN_ANSWER = """Here is **Markdown**, as a real model often writes it:

- a list item with `inline code`
- a [link to the AI SDK](https://ai-sdk.dev)

```python
def greet(name: str) -> str:
    return f"Hello, {name}!"
```

| tool | runs |
| --- | --- |
| find_agent | at once |
| create_agent | for minutes |
"""


def reasoning_for(user_text: str) -> str:
    topic = _shorten(user_text, 60)
    return (
        f'The user wrote "{topic}". I should answer plainly and say what I am. '
        "A short, friendly reply is best."
    )


# --- reading the request ----------------------------------------------------------------


def text_of(content: Any) -> str:
    """Message content as plain text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
    return ""


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return text_of(message.get("content"))
    return ""


def offered_tool_names(request: Request) -> set[str]:
    if request.get("tool_choice") == "none":
        return set()
    names = set()
    for tool in request.get("tools") or []:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(function, Mapping) and function.get("name"):
            names.add(function["name"])
    return names


def _asks_for_title(messages: Sequence[Mapping[str, Any]]) -> bool:
    return any(
        message.get("role") == "system"
        and re.search(r"\btitle\b", text_of(message.get("content")), re.IGNORECASE)
        for message in messages
    )


def _asks_for_summary(messages: Sequence[Mapping[str, Any]]) -> bool:
    return any(
        message.get("role") == "system"
        and re.search(r"\bsummar", text_of(message.get("content")), re.IGNORECASE)
        for message in messages
    )


def latest_tool_results(messages: Sequence[Mapping[str, Any]]) -> list[ToolResult]:
    """The tool messages answering the last assistant message that called tools."""
    start = 0
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") == "assistant" and message.get("tool_calls"):
            start = index + 1
            for call in message["tool_calls"]:
                function = call.get("function") or {}
                arguments = _json_object(function.get("arguments"))
                calls[call.get("id", "")] = (function.get("name", ""), arguments)
            break
    results = []
    for message in messages[start:]:
        if message.get("role") != "tool":
            continue
        name, arguments = calls.get(message.get("tool_call_id", ""), (message.get("name", ""), {}))
        results.append(ToolResult(name or "tool", arguments, text_of(message.get("content"))))
    return results


def _json_object(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


# --- agent requests ---------------------------------------------------------------------

_FIND_VERBS = re.compile(r"\b(?:find|search|recommend|suggest|discover|look(?:ing)?\s+for)", re.I)
_CREATE_VERBS = re.compile(r"\b(?:create|build|make|generate|design|set\s+up)", re.I)
_AGENT_WORD = re.compile(r"\bagents?\b", re.I)
# An apostrophe inside a word ("I'm") is not a quote, so single quotes must stand alone.
_QUOTED = re.compile(r"""(?<![\w'])'([^']+)'(?!\w)|"([^"]+)"|“([^”]+)”|‘([^’]+)’""")
_WORD = re.compile(r"[\w][\w'’-]*")
_GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|hiya|howdy|good (?:morning|afternoon|evening))\b", re.I
)

_FILLER = frozenset(
    """a an the please pls can could would will you your me i i'm im my we us our find search
    searching look looking for recommend suggest discover help need want that which who to with
    some any is are there get show hey hi hello thanks thank just something someone one use using
    query of on in and or it be do does""".split()
)


def agent_intent(text: str) -> str | None:
    """ "find" or "create" when the text asks for an agent; the verb said first decides
    ("create an agent that searches the web" is a request to create)."""
    if not _AGENT_WORD.search(text):
        return None
    verbs = []
    for intent, pattern in (("find", _FIND_VERBS), ("create", _CREATE_VERBS)):
        match = pattern.search(text)
        if match:
            verbs.append((match.start(), intent))
    return min(verbs)[1] if verbs else None


def search_query(text: str) -> str:
    """The quoted query if the user quoted one, else the request without its filler words."""
    quoted = _QUOTED.search(text)
    if quoted:
        return next(group for group in quoted.groups() if group).strip()
    words = [word for word in _WORD.findall(text) if word.lower() not in _FILLER]
    # "agent" says nothing the tool does not already know, unless it is all there is.
    topical = [word for word in words if not _AGENT_WORD.fullmatch(word)]
    return " ".join(topical or words) or text.strip()


# --- summaries --------------------------------------------------------------------------

_SPEAKER = re.compile(r"^(user|assistant|tool)\s*:\s*(.*)$", re.IGNORECASE)


def summary_for(transcript: str) -> str:
    """What a summarising model would say of a transcript of `role: text` lines: the user's
    requests in order, each shortened, in one paragraph."""
    asks = []
    for line in transcript.splitlines():
        match = _SPEAKER.match(line.strip())
        if match and match.group(1).lower() == "user" and match.group(2).strip():
            asks.append(_shorten(" ".join(match.group(2).split()), 80))
    if not asks:
        return "Summary: an earlier exchange with no questions from the user."
    return "Summary: earlier, the user asked " + "; then ".join(asks) + "."


# --- titles -----------------------------------------------------------------------------

_TITLE_STOPWORDS = _FILLER | frozenset(
    """what what's whats how why when where whose this these those was were been have has had
    like about from into at by as so if then than but not no yes very really also its it's
    tell explain give let let's lets know make sure am""".split()
)
TITLE_MAX_CHARS = 50


def title_for(text: str) -> str:
    """3–6 words in Title Case, at most 50 characters."""
    quoted = _QUOTED.search(text)
    if quoted and agent_intent(text) == "find":
        words = ["find", *_WORD.findall(next(g for g in quoted.groups() if g))]
        if not any(_AGENT_WORD.fullmatch(word) for word in words):
            words.append("agent")
    else:
        words = _keywords(text)
    if not words:
        words = ["friendly", "greeting"] if _GREETING.match(text) else ["new", "conversation"]
    if len(words) < 3:
        words = [*(["quick"] if len(words) < 2 else []), *words, "chat"]
    # Three words of at most 15 characters always fit in 50, so a title never drops below three.
    title_words = [_title_case(word[:15]) for word in words[:6]]
    while len(" ".join(title_words)) > TITLE_MAX_CHARS:
        title_words.pop()
    return " ".join(title_words)


def _title_case(word: str) -> str:
    return word if any(c.isupper() for c in word) else word.capitalize()  # keeps "AWS", "iPhone"


def _keywords(text: str) -> list[str]:
    seen: set[str] = set()
    keywords = []
    for word in _WORD.findall(text):
        lowered = word.lower()
        if lowered not in _TITLE_STOPWORDS and lowered not in seen and not lowered.isdigit():
            seen.add(lowered)
            keywords.append(word)
    return keywords


# --- answers after tool results ---------------------------------------------------------

_PENDING = {"operation_started", "operation_pending", "operation_in_progress", "accepted"}


def explain_tool_results(results: Sequence[ToolResult]) -> str:
    if not results:
        return "The tool finished, but it sent nothing back for me to report."
    return "\n\n".join(explain_tool_result(result) for result in results)


def explain_tool_result(result: ToolResult) -> str:
    data: Any
    try:
        data = json.loads(result.content)
    except (json.JSONDecodeError, TypeError):
        data = None
    error = _error_message(data, result.content)
    if error is not None:
        return (
            f"Sorry, the {result.name} tool did not work: {error.rstrip('.')}. "
            "You can try again in a moment, or ask me in a different way."
        )
    if isinstance(data, dict):
        kind = data.get("type") or data.get("status")
        if kind in _PENDING:
            return _operation_started(result.name)
        query = data.get("query") or result.arguments.get("query")
        if isinstance(data.get("agents"), list):
            return _found_agents(data["agents"], query)
        if kind == "no_results":
            return _found_agents([], query, data.get("suggestions"))
        if kind == "agent_saved":
            return _agent_saved(data)
        if kind == "agent_generated":
            name = data.get("agent_name") or "Your new agent"
            return f"{name} is ready. Sign in if you want agents kept in a library."
        if kind == "understanding_updated":
            return "Thanks, I'll remember that about you and your business."
    return _summary(result.name, data, result.content)


def _error_message(data: Any, content: str) -> str | None:
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, Mapping):
            error = error.get("message") or json.dumps(error)
        if error:
            return str(error)
        if data.get("type") == "error":
            return str(data.get("message") or "an unknown error")
    stripped = content.strip()
    if stripped[:5].lower() == "error":
        return stripped[5:].lstrip(" :-") or "an unknown error"
    return None


def _operation_started(tool_name: str) -> str:
    what = "creating your agent" if tool_name == "create_agent" else f"the {tool_name} operation"
    return (
        f"I've started {what}. It runs in the background and can take a few minutes; "
        "the answer will appear here as soon as it finishes, even if you close this page "
        "and come back later."
    )


def _found_agents(agents: list[Any], query: Any, suggestions: Any = None) -> str:
    searched = f' for "{query}"' if query else ""
    if not agents:
        browse = ""
        if isinstance(suggestions, list) and suggestions:
            browse = f" Agents exist for {', '.join(map(str, suggestions[:5]))}."
        return (
            f"I couldn't find any agents{searched}.{browse} Try a broader search, "
            "or ask me to create an agent that does exactly what you need."
        )
    shown = [agent for agent in agents[:5] if isinstance(agent, Mapping)]
    noun = "agent" if len(agents) == 1 else "agents"
    lines = [f"I found {len(agents)} {noun}{searched}:", ""]
    for number, agent in enumerate(shown, 1):
        name = agent.get("name") or "Unnamed agent"
        description = _shorten(str(agent.get("description") or ""), 120)
        lines.append(f"{number}. {name}" + (f" — {description}" if description else ""))
    if len(agents) > len(shown):
        lines.append(f"…and {len(agents) - len(shown)} more.")
    lines += ["", "Would you like to know more about one of them, or try a different search?"]
    return "\n".join(lines)


def _agent_saved(data: Mapping[str, Any]) -> str:
    name = data.get("agent_name") or "Your new agent"
    link = data.get("library_agent_link")
    where = f" You can open it at {link}." if link else ""
    return f"{name} is ready and saved to your library.{where} Want me to help you run it?"


def _summary(tool_name: str, data: Any, content: str) -> str:
    if isinstance(data, dict) and data:
        first_fields = list(data.items())[:5]
        facts = ", ".join(f"{key}: {_shorten(_plain(value), 60)}" for key, value in first_fields)
        more = f" (and {len(data) - 5} more fields)" if len(data) > 5 else ""
        return f"The {tool_name} tool returned {facts}{more}."
    if isinstance(data, list):
        return f"The {tool_name} tool returned {len(data)} items: {_shorten(_plain(data), 200)}."
    if content.strip():
        return f"The {tool_name} tool returned: {_shorten(content.strip(), 300)}"
    return f"The {tool_name} tool finished without returning anything."


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(",.;:") + "…"


# --- small talk -------------------------------------------------------------------------


def friendly_answer(user_text: str, offered: set[str], intent: str | None = None) -> str:
    if not user_text.strip():
        return (
            "Hello! I'm the local scripted model. Send me a message and I'll answer here, "
            "a few words at a time, just like a real model streams its reply."
        )
    # Seeded by the message so the same question always gets the same answer.
    rng = random.Random(user_text)
    topic = _shorten(user_text, 80)
    if _GREETING.match(user_text):
        opening = "Hello, nice to meet you!"
    elif intent is not None:
        verb = "search for" if intent == "find" else "create"
        opening = f"You'd like me to {verb} an agent, but that tool is not available here."
    else:
        lead = rng.choice(["Thanks for your message", "You wrote", "Got it"])
        stop = "" if topic[-1] in ".?!…" else "."  # no '?".' after a quoted question
        opening = f'{lead}: "{topic}"{stop}'
    sentences = [
        opening,
        "I'm the scripted model that runs when no LLM API key is configured, so my answers "
        "follow a few simple rules instead of real understanding.",
        "Still, this reply travels the same way a real one would: written to the task stream "
        "piece by piece and streamed to you as it arrives.",
    ]
    abilities = [
        phrase
        for tool, phrase in (
            ("find_agent", 'ask me to find an agent (for example "find an agent for newsletters")'),
            ("create_agent", "ask me to create an agent"),
        )
        if tool in offered
    ]
    if abilities:
        sentences.append(f"To see tools at work, {' or '.join(abilities)}.")
    else:
        sentences.append("Set CHAT_LLM_API_KEY to talk to a real model instead.")
    return " ".join(sentences)
