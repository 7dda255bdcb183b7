"""What AI SDK clients (`useChat`, `AbstractChat` + `DefaultChatTransport`) read.

- `fold`: a message's chunks folded into the UIMessage the client builds from them.
- `chain`: one assistant message per turn, spanning the turn's task and the operation
  tasks it started; the reader follows them as one stream.
- `history`: the session's conversation as UIMessages, which message a resume replays,
  and the stored conversation following the client's (edits, regenerations).
"""
