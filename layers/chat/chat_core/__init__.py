"""chat_core: the shared layer of the chat-streaming backend.

Grouped by what each part is about: `registry` (task streams in Redis), `protocol` (AI SDK
chunks and SSE), `events` (pub/sub event bus), `sessions`, `chat` (the LLM turn), `tools`,
`completions` (webhooks, consumer, sweeper), `worker`, `api` (FastAPI routers).
Nothing heavy is imported here, so a Lambda pays only for the modules it uses.
"""
