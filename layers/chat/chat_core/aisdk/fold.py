"""Folding UI message stream chunks into the UIMessage an AI SDK client assembles from them.

    message = UIMessageFold("msg-1")
    for chunk in chunks:
        if not message.add(chunk):
            break                     # an `error`: the client stops reading there too
    message.ui()                      # {"id": "msg-1", "role": "assistant", "parts": [...]}

Mirrors `processUIMessageStream` of the `ai` package (5, 6 and 7) for the chunks we send,
so what `GET /sessions/{id}/messages` returns equals the client's own `messages`.
"""

from __future__ import annotations

from typing import Any


class UIMessageFold:
    def __init__(self, message_id: str) -> None:
        self.id = message_id
        self.parts: list[dict[str, Any]] = []
        self._texts: dict[str, dict[str, Any]] = {}
        self._reasoning: dict[str, dict[str, Any]] = {}

    def ui(self) -> dict[str, Any]:
        return {"id": self.id, "role": "assistant", "parts": [dict(p) for p in self.parts]}

    def add(self, chunk: dict[str, Any]) -> bool:
        """Apply one chunk; False at an `error`, after which the client reads nothing more."""
        kind = chunk.get("type", "")
        if kind == "start":
            self.id = chunk.get("messageId") or self.id
        elif kind == "start-step":
            self.parts.append({"type": "step-start"})
        elif kind == "finish-step":
            self._texts.clear()
            self._reasoning.clear()
        elif kind in ("text-start", "reasoning-start"):
            part: dict[str, Any] = {
                "type": kind.removesuffix("-start"),
                "text": "",
                "state": "streaming",
            }
            if kind == "reasoning-start":
                part["id"] = chunk["id"]
            (self._texts if kind == "text-start" else self._reasoning)[chunk["id"]] = part
            self.parts.append(part)
        elif kind in ("text-delta", "reasoning-delta"):
            active = self._texts if kind == "text-delta" else self._reasoning
            if (growing := active.get(chunk["id"])) is not None:
                growing["text"] += chunk["delta"]
        elif kind in ("text-end", "reasoning-end"):
            active = self._texts if kind == "text-end" else self._reasoning
            if (ended := active.pop(chunk["id"], None)) is not None:
                ended["state"] = "done"
        elif kind.startswith("tool-"):
            self._tool(kind, chunk)
        elif kind.startswith("data-"):
            self._data(chunk)
        elif kind == "error":
            return False
        return True

    def _tool(self, kind: str, chunk: dict[str, Any]) -> None:
        call_id = chunk["toolCallId"]
        part = self._tool_part(call_id)
        if kind == "tool-input-start":
            if part is None:
                part = {"type": f"tool-{chunk['toolName']}", "toolCallId": call_id}
                self.parts.append(part)
            part.update(state="input-streaming")
            part.pop("input", None)
        elif part is None:
            return
        elif kind == "tool-input-available":
            part.update(state="input-available", input=chunk.get("input"))
        elif kind == "tool-output-available":
            part.update(state="output-available", output=chunk.get("output"))
            part.pop("errorText", None)
        elif kind == "tool-output-error":
            part.update(state="output-error", errorText=chunk.get("errorText"))
            part.pop("output", None)

    def _tool_part(self, call_id: str) -> dict[str, Any] | None:
        for part in reversed(self.parts):
            if part["type"].startswith("tool-") and part.get("toolCallId") == call_id:
                return part
        return None

    def _data(self, chunk: dict[str, Any]) -> None:
        if chunk.get("id") is not None:
            for part in self.parts:
                if part["type"] == chunk["type"] and part.get("id") == chunk["id"]:
                    part["data"] = chunk.get("data")
                    return
        self.parts.append({k: v for k, v in chunk.items() if k in ("type", "id", "data")})
