"""The Lua scripts ``RedisStore`` runs (each atomic in Redis); the layout is described there."""

from __future__ import annotations

from typing import Final

# Adds `member` to the tag set `key` until `ttl` ms from now, first dropping expired members.
TAG_LUA: Final = """
local function tag(key, member, ttl)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  redis.call('ZADD', key, now + ttl, member)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
"""
# KEYS[1]: the value key; then ARGV[3] tag keys, then as many mark keys. ARGV[1]: the value;
# ARGV[2]: the TTL in ms; ARGV[3]: how many tags; ARGV[4]: the clock read before the value was
# computed ('' for none): a tag marked later refuses the value (0 returned; a value already
# there was written after that invalidation, or deleted by it, and stays).
SET_SCRIPT: Final = TAG_LUA + """
local ttl, n = tonumber(ARGV[2]), tonumber(ARGV[3])
if ARGV[4] ~= '' then
  local since = tonumber(ARGV[4])
  for i = 2 + n, 1 + 2 * n do
    local mark = redis.call('GET', KEYS[i])
    if mark and tonumber(mark) > since then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
for i = 2, 1 + n do tag(KEYS[i], KEYS[1], ttl) end
return 1
"""  # fmt: skip
# Cluster: KEYS[1]: one tag key. ARGV[1]: the value key; ARGV[2]: the TTL in ms.
TAG_SCRIPT: Final = TAG_LUA + "tag(KEYS[1], ARGV[1], tonumber(ARGV[2]))\nreturn 1\n"

# KEYS[1]: the clock; then ARGV[1] tag keys, then as many mark keys. Marks each tag with the
# next clock value (kept ARGV[2] ms), then deletes every member of each tag and the tag;
# returns how many values went and the clock value.
INVALIDATE_SCRIPT: Final = """
local tags = tonumber(ARGV[1])
local clock = redis.call('INCR', KEYS[1])
for i = 2 + tags, 1 + 2 * tags do redis.call('SET', KEYS[i], clock, 'PX', ARGV[2]) end
local n = 0
for i = 2, 1 + tags do
  local members = redis.call('ZRANGE', KEYS[i], 0, -1)
  -- unpack() is limited by Lua's stack, so delete in batches
  for j = 1, #members, 1000 do
    n = n + redis.call('DEL', unpack(members, j, math.min(j + 999, #members)))
  end
  redis.call('DEL', KEYS[i])
end
return {n, clock}
"""

# Cluster: KEYS[1]: one tag key. Empties it and returns its members (the caller deletes them).
POP_SCRIPT: Final = (
    "local m = redis.call('ZRANGE', KEYS[1], 0, -1)\nredis.call('DEL', KEYS[1])\nreturn m"
)

# KEYS[1]: the lock key; ARGV[1]: our token. Compare-and-delete, so a lock that expired and was
# taken by another replica is not released by us.
RELEASE_SCRIPT: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Cluster, one hash slot. KEYS[1]: a staged value; KEYS[2]: its key. The staged value replaces
# the key's, unless an invalidation deleted it meanwhile; returns whether it did.
PROMOTE_SCRIPT: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
return 1
"""
