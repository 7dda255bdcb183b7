"""Every Lua script the system runs, and the one way they are run.

    CLAIM = Script("meta stream", "now_ms:n ttl_ms:n worker lease_ms:n", body)
    await CLAIM(meta=keys.task_meta(t), stream=keys.task_stream(t), now_ms=..., ...)

A script declares the names of its keys and arguments; the runner writes them as named
locals at the top of the body (`local meta = KEYS[1]`, `local now_ms = tonumber(ARGV[1])`
for a `:n` argument), so a body never says `ARGV[5]`, and callers pass them by name, so no
two call sites can disagree about the order. A `rest` name collects the remaining
arguments as a Lua list (the chunks to append, say).

Arguments come in one order everywhere: the clock and the limits first (`now_ms`,
`ttl_ms`, `maxlen`), then what the script is about. Keys that one script touches share a
hash tag (see `keys.py`), so every script runs unchanged on a cluster.

Scripts are registered lazily and always run on the current loop's client; redis-py
retries NOSCRIPT with EVAL, which ElastiCache needs after a failover. Never queue scripts
in pipelines: a cluster pipeline would not load them first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .redis_client import get_redis


class Script:
    def __init__(self, keys: str, args: str, body: str, *, rest: str | None = None) -> None:
        self.key_names = keys.split()
        specs = [a.partition(":") for a in args.split()]
        self.arg_names = [name for name, _, _ in specs]
        header = [f"local {name} = KEYS[{i}]" for i, name in enumerate(self.key_names, 1)]
        for i, (name, _, kind) in enumerate(specs, 1):
            value = f"tonumber(ARGV[{i}])" if kind == "n" else f"ARGV[{i}]"
            header.append(f"local {name} = {value}")
        if rest:
            header.append(
                f"local {rest} = {{}} for i = {len(specs) + 1}, #ARGV do "
                f"{rest}[#{rest} + 1] = ARGV[i] end"
            )
        self.rest = rest
        self.source = "\n".join([*header, _PRELUDE, body])
        self._script: Any = None

    async def __call__(self, rest: Sequence[str] = (), **named: Any) -> Any:
        missing = set(self.key_names + self.arg_names) - named.keys()
        extra = named.keys() - set(self.key_names + self.arg_names)
        if missing or extra or (rest and not self.rest):
            raise TypeError(f"script arguments: missing {missing or '{}'}, unexpected {extra}")
        client = get_redis()
        if self._script is None:
            self._script = client.register_script(self.source)
        return await self._script(
            keys=[named[k] for k in self.key_names],
            args=[*(named[a] for a in self.arg_names), *rest],
            client=client,
        )


# Helpers every script may call.
# keep_alive: a task's meta and stream expire together, never before its lease runs out.
# append: XADD each chunk (wire JSON). A task stream is never trimmed: a reader may ask for
# any of it (an AI SDK resume replays the turn from its `start`); it expires with its TTL.
_PRELUDE = """
local function keep_alive(meta_key, stream_key, ttl, now)
  local lease = tonumber(redis.call('HGET', meta_key, 'lease_until') or '0') or 0
  if lease > now then ttl = ttl + lease - now end
  redis.call('PEXPIRE', meta_key, ttl)
  redis.call('PEXPIRE', stream_key, ttl)
end
local function append(stream_key, chunks)
  local ids = {}
  for _, data in ipairs(chunks) do
    ids[#ids + 1] = redis.call('XADD', stream_key, '*', 'data', data)
  end
  return ids
end
"""


# --- Tasks (keys: the task's meta hash and stream, one slot) --------------------------------
TASK_CREATE = Script(
    "meta stream",
    "now_ms:n ttl_ms:n fields_json",
    """
if redis.call('EXISTS', meta) == 1 then return 0 end
for field, value in pairs(cjson.decode(fields_json)) do redis.call('HSET', meta, field, value) end
append(stream, chunks)
keep_alive(meta, stream, ttl_ms, now_ms)
return 1
""",
    rest="chunks",
)

# `writer` and `batch` make a retried write harmless: a batch a writer already got into the
# stream (its answer lost to a broken connection) is not appended twice.
TASK_PUBLISH = Script(
    "meta stream",
    "now_ms:n ttl_ms:n writer batch:n",
    """
local st = redis.call('HMGET', meta, 'status', 'cancel', 'written_by')
if st[1] ~= 'running' then return false end
local cancel = st[2] or ''
if writer ~= '' then
  local last = st[3]
  if last and last ~= '' then
    local sep = string.find(last, '|', 1, true)
    if string.sub(last, 1, sep - 1) == writer and tonumber(string.sub(last, sep + 1)) >= batch then
      return {cancel}
    end
  end
  redis.call('HSET', meta, 'written_by', writer .. '|' .. batch)
end
local ids = append(stream, chunks)
if ttl_ms > 0 then keep_alive(meta, stream, ttl_ms, now_ms) end  -- 0: refreshed moments ago
table.insert(ids, 1, cancel)
return ids
""",
    rest="chunks",
)

# → {the lease it had, then the claimed task's meta (HGETALL, flat)} | 'taken' | 'not-running'
TASK_CLAIM = Script(
    "meta stream",
    "now_ms:n ttl_ms:n worker lease_ms:n",
    """
local st = redis.call('HMGET', meta, 'status', 'worker', 'lease_until')
if st[1] ~= 'running' then return 'not-running' end
if st[2] and st[2] ~= '' then return 'taken' end
redis.call('HSET', meta, 'worker', worker, 'phase', 'working', 'lease_until', now_ms + lease_ms)
keep_alive(meta, stream, ttl_ms, now_ms)
local reply = redis.call('HGETALL', meta)
table.insert(reply, 1, st[3] or '0')
return reply
""",
)

# → {status, cancel flag, 1 if the lease is still this worker's and was extended}
TASK_REFRESH = Script(
    "meta stream",
    "now_ms:n ttl_ms:n worker lease_ms:n",
    """
local st = redis.call('HMGET', meta, 'status', 'worker', 'cancel')
if st[1] ~= 'running' or st[2] ~= worker then return {st[1] or '', st[3] or '', 0} end
redis.call('HSET', meta, 'lease_until', now_ms + lease_ms)
keep_alive(meta, stream, ttl_ms, now_ms)
return {st[1], st[3] or '', 1}
""",
)

# The task waits without a worker until `lease_until`: for a webhook (`awaiting`).
TASK_SET_PHASE = Script(
    "meta stream",
    "now_ms:n ttl_ms:n phase lease_until:n",
    """
if redis.call('HGET', meta, 'status') ~= 'running' then return false end
redis.call('HSET', meta, 'phase', phase, 'lease_until', lease_until, 'worker', '')
keep_alive(meta, stream, ttl_ms, now_ms)
return 1
""",
)

# An operation's result, once. A worker that holds the lease (it ran the tool itself) keeps
# it; otherwise the task is queued for the worker that writes the continuation.
# → 'applied' | 'duplicate' | 'not-running' | 'wrong-operation'
TASK_APPLY_RESULT = Script(
    "meta stream",
    "now_ms:n ttl_ms:n operation_id worker lease_until:n",
    """
local st = redis.call('HMGET', meta, 'status', 'operation_id', 'result_applied', 'worker')
if st[1] ~= 'running' then return 'not-running' end
if st[2] ~= operation_id then return 'wrong-operation' end
if st[3] == '1' then return 'duplicate' end
append(stream, chunks)
redis.call('HSET', meta, 'result_applied', '1')
if worker == '' or st[4] ~= worker then
  redis.call('HSET', meta, 'phase', 'queued', 'lease_until', lease_until, 'worker', '')
end
keep_alive(meta, stream, ttl_ms, now_ms)
return 'applied'
""",
    rest="chunks",
)

# → {status, phase}; raises the cancel flag only on a running task
TASK_REQUEST_CANCEL = Script(
    "meta",
    "",
    """
local st = redis.call('HMGET', meta, 'status', 'phase')
if st[1] == 'running' then redis.call('HSET', meta, 'cancel', '1') end
return {st[1] or '', st[2] or ''}
""",
)

# The one place a task leaves `running`: the closing chunks (only for an operation whose
# result never came), the error (if any), then the single `finish`.
# `expired_before` > 0: only if the lease ran out by then, and only in phase `phase`
# (the sweeper's condition, checked where no worker can slip in between).
# → {'finished', result applied '1'/'0'} | {'not-running'} | {'alive', lease_until}
TASK_FINISH = Script(
    "meta stream",
    "now_ms:n ttl_ms:n status error_json finish_json expired_before:n phase",
    """
local st = redis.call('HMGET', meta, 'status', 'lease_until', 'phase', 'result_applied')
if st[1] ~= 'running' then return {'not-running'} end
if expired_before > 0 then
  local lease = tonumber(st[2] or '0') or 0
  if lease > expired_before or st[3] ~= phase then return {'alive', tostring(lease)} end
end
local applied = st[4] == '1'
if not applied then append(stream, closing) end
redis.call('HSET', meta, 'status', status, 'finished_at', now_ms, 'lease_until', 0)
if error_json ~= '' then append(stream, {error_json}) end
append(stream, {finish_json})
keep_alive(meta, stream, ttl_ms, now_ms)
return {'finished', applied and '1' or '0'}
""",
    rest="closing",
)

# An anonymous task becomes its claimed session's owner's (an owned one never changes hands).
TASK_CLAIM_OWNER = Script(
    "meta",
    "user_id",
    """
if redis.call('EXISTS', meta) == 0 or (redis.call('HGET', meta, 'user_id') or '') ~= '' then
  return 0
end
redis.call('HSET', meta, 'user_id', user_id)
return 1
""",
)

# Deleting a session's tasks: the stream goes at once, so no reader gets it again.
TASK_DELETE = Script(
    "meta stream",
    "",
    """
return redis.call('DEL', meta, stream)
""",
)


# --- Sessions' running tasks (keys: one session's slot) -------------------------------------
# A session runs one turn at a time: the pointer names it. A pointer to a task that is no
# longer running (a crash between the two writes of a finish) does not hold the session.
# → false when claimed, else the id of the turn that holds it
SESSION_CLAIM_TURN = Script(
    "pointer",
    "ttl_ms:n task_id expected",
    """
local current = redis.call('GET', pointer)
if current and current ~= expected then return current end
redis.call('SET', pointer, task_id, 'PX', ttl_ms)
return false
""",
)

# Extends the pointer only while it names this task.
SESSION_EXTEND_TURN = Script(
    "pointer",
    "ttl_ms:n task_id",
    """
if redis.call('GET', pointer) == task_id then return redis.call('PEXPIRE', pointer, ttl_ms) end
return 0
""",
)

SESSION_RELEASE_TURN = Script(
    "pointer",
    "task_id",
    """
if redis.call('GET', pointer) == task_id then return redis.call('DEL', pointer) end
return 0
""",
)

# The session's pending operations: a set, so none blocks a new turn and all stay findable.
SESSION_ADD_OPERATION = Script(
    "operations",
    "ttl_ms:n task_id",
    """
redis.call('SADD', operations, task_id)
if redis.call('PTTL', operations) < ttl_ms then redis.call('PEXPIRE', operations, ttl_ms) end
return 1
""",
)


# --- Sessions (keys: one session's meta hash, message list and usage list) -----------------
# Every write stamps updated_at and, when `ttl_ms` > 0, moves the expiry of all three keys.
_SESSION = """
local function touch(ttl)
  if ttl > 0 then
    for _, key in ipairs({meta, messages, usage}) do redis.call('PEXPIRE', key, ttl) end
  end
end
local function snapshot()
  return {redis.call('HGETALL', meta), redis.call('LRANGE', messages, 0, -1),
          redis.call('LRANGE', usage, 0, -1)}
end
"""
_SESSION_KEYS = "meta messages usage"

# → 1, or 0 if the session exists
SESSION_CREATE = Script(
    _SESSION_KEYS,
    "ttl_ms:n user_id created_at",
    _SESSION
    + """
if redis.call('EXISTS', meta) == 1 then return 0 end
redis.call('HSET', meta, 'user_id', user_id, 'created_at', created_at, 'updated_at', created_at)
touch(ttl_ms)
return 1
""",
)

SESSION_READ = Script(_SESSION_KEYS, "", _SESSION + "return snapshot()")

# what: 'messages' | 'usage' | 'title'
# → {owner, length of the list written}, or nil when the session does not exist
SESSION_WRITE = Script(
    _SESSION_KEYS,
    "now ttl_ms:n what",
    _SESSION
    + """
local owner = redis.call('HGET', meta, 'user_id')
if not owner then return false end
local length = 0
if what == 'title' then
  redis.call('HSET', meta, 'title', values[1])
else
  local list = usage
  if what == 'messages' then list = messages end
  for _, value in ipairs(values) do length = redis.call('RPUSH', list, value) end
end
redis.call('HSET', meta, 'updated_at', now)
touch(ttl_ms)
return {owner, length}
""",
    rest="values",
)

# → 1, or nil when missing or someone else's
SESSION_ASSIGN = Script(
    _SESSION_KEYS,
    "now ttl_ms:n user_id",
    _SESSION
    + """
local owner = redis.call('HGET', meta, 'user_id')
if not owner or (owner ~= '' and owner ~= user_id) then return false end
redis.call('HSET', meta, 'user_id', user_id, 'updated_at', now)
touch(ttl_ms)
return 1
""",
)

# Keeps the first `keep` messages (an edit or a regenerate rewinds the conversation).
# → 1, or nil when the session does not exist
SESSION_TRUNCATE = Script(
    _SESSION_KEYS,
    "now ttl_ms:n keep:n",
    _SESSION
    + """
if not redis.call('HGET', meta, 'user_id') then return false end
if keep == 0 then redis.call('DEL', messages) else redis.call('LTRIM', messages, 0, keep - 1) end
redis.call('HSET', meta, 'updated_at', now)
touch(ttl_ms)
return 1
""",
)

# caller '' = anonymous; → the owner it had ('' = anonymous), or nil if refused
SESSION_DELETE = Script(
    _SESSION_KEYS,
    "caller",
    """
local owner = redis.call('HGET', meta, 'user_id')
if not owner or (owner ~= '' and owner ~= caller) then return false end
redis.call('DEL', meta, messages, usage)
return owner
""",
)

# The tool message answering `tool_call_id` (the last one) gets `content`: found and replaced
# in one step, so no other write can slip in between. Re-encoded by cjson, which keeps what
# a message holds (key order is free) except an empty list, written as {}: the one a tool
# message can have, `tool_calls`, is put back. With `pending` (a type), only a message whose
# content is still of that type is replaced. → the owner, or false when none was replaced
SESSION_SETTLE_TOOL_MESSAGE = Script(
    _SESSION_KEYS,
    "tool_call_id content pending now ttl_ms:n",
    _SESSION
    + """
local function still_pending(text)
  if type(text) ~= 'string' then return false end
  local ok, parsed = pcall(cjson.decode, text)
  return ok and type(parsed) == 'table' and parsed.type == pending
end
local all = redis.call('LRANGE', messages, 0, -1)
for i = #all, 1, -1 do
  local message = cjson.decode(all[i])
  if message.role == 'tool' and message.tool_call_id == tool_call_id then
    if pending ~= '' and not still_pending(message.content) then return false end
    message.content = content
    local encoded = string.gsub(cjson.encode(message), '"tool_calls":{}', '"tool_calls":[]')
    redis.call('LSET', messages, i - 1, encoded)
    redis.call('HSET', meta, 'updated_at', now)
    touch(ttl_ms)
    return redis.call('HGET', meta, 'user_id') or ''
  end
end
return false
""",
)

# A read-merge-write's write: `target` set to `replacement` only while it still holds
# `expected` ('': while it holds nothing). → 1, or 0 when it changed since it was read
VALUE_SWAP = Script(
    "target",
    "expected replacement",
    """
if (redis.call('GET', target) or '') ~= expected then return 0 end
redis.call('SET', target, replacement)
return 1
""",
)

# The session read cache (keys: the cached copy and its version, one session's slot).
CACHE_INVALIDATE = Script(
    "cache version",
    "version_ttl_ms",
    """
redis.call('INCR', version)
redis.call('PEXPIRE', version, version_ttl_ms)
redis.call('DEL', cache)
return 1
""",
)

# Fills the cache only if the version is still the one seen before reading the store.
CACHE_FILL = Script(
    "cache version",
    "ttl_ms seen session_json",
    """
if (redis.call('GET', version) or '') ~= seen then return 0 end
redis.call('SET', cache, session_json, 'PX', ttl_ms)
return 1
""",
)


# --- Completions (keys: the completions tag) ------------------------------------------------
# A webhook delivery queued once per (operation, webhook id); a repeat gets the first answer.
# Never trimmed here: an entry leaves the stream only once acknowledged (see the sweeper).
# → {answer, 0} for a repeat | {answer, 1, entry id, then id, data of each entry delivered}
# A `consumer` takes new entries at once (its own among them, unless `count` older ones
# were waiting): the request that queued a completion can process it, with the stream and
# its pending list as the safety net. Without a consumer the entry waits for the workers.
COMPLETION_ENQUEUE_ONCE = Script(
    "seen completions",
    "answer_json entry_json dedupe_seconds group consumer count:n",
    """
local first = redis.call('GET', seen)
if first then return {first, 0} end
local queued = {answer_json, 1, redis.call('XADD', completions, '*', 'data', entry_json)}
redis.call('SET', seen, answer_json, 'EX', dedupe_seconds)
if consumer == '' then return queued end
local function take(call)
  return call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', completions, '>')
end
local read = take(redis.pcall)
if type(read) == 'table' and read.err then  -- NOGROUP: a new or restarted server
  redis.call('XGROUP', 'CREATE', completions, group, '0')
  read = take(redis.call)
end
for _, entry in ipairs(read and read[1][2] or {}) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'data' then
      queued[#queued + 1] = entry[1]
      queued[#queued + 1] = fields[i + 1]
    end
  end
end
return queued
""",
)

COMPLETION_DEAD_LETTER = Script(
    "completions dead failures",
    "now_ms maxlen group entry_id data deliveries reason",
    """
redis.call('XADD', dead, 'MAXLEN', '~', maxlen, '*', 'entry_id', entry_id, 'data', data,
           'deliveries', deliveries, 'reason', reason, 'dead_lettered_at', now_ms)
redis.call('XACK', completions, group, entry_id)
redis.call('HDEL', failures, entry_id)
return 1
""",
)
