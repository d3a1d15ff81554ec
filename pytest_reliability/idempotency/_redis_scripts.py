"""The Redis idempotency store's Lua scripts: each step one script, atomic on the server.

Every script but ``PURGE_ONE`` takes the store marker as ``KEYS[2]`` and the marker value read
at connect as its last argument, and answers ``{'lost'}`` when they differ (see
``_redis_store.py``).
"""

from __future__ import annotations

__all__ = ["CLAIM", "COMPLETE", "LOST", "PURGE_ONE", "RELEASE"]

# Every script takes the marker as KEYS[2] and its expected value as the last argument.
LOST = "if redis.call('GET', KEYS[2]) ~= ARGV[#ARGV] then return {'lost'} end\n"

CLAIM = (
    LOST
    + """
local k = KEYS[1]
local fp, token = ARGV[1], ARGV[2]
local now, lease, retention, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]),
  tonumber(ARGV[6])
local function fresh()
  redis.call('DEL', k)
  redis.call('HSET', k, 'state', 'IN_PROGRESS', 'fp', fp, 'token', token, 'fence', 1,
    'lease', now + lease, 'expires', now + retention)
  redis.call('PEXPIRE', k, ttl)
  return {'acquired', 1}
end
if redis.call('EXISTS', k) == 0 then return fresh() end
local r = redis.call('HMGET', k, 'state', 'fp', 'token', 'fence', 'lease', 'expires')
local fence, leased, expires = tonumber(r[4]), tonumber(r[5]), tonumber(r[6])
if fence == nil or leased == nil or expires == nil then
  return {'existing', redis.call('HGETALL', k)}
end
if expires <= now then return fresh() end
if r[2] ~= fp or r[1] ~= 'IN_PROGRESS' or leased > now then
  return {'existing', redis.call('HGETALL', k)}
end
redis.call('HSET', k, 'token', token, 'fence', fence + 1, 'lease', now + lease)
return {'takeover', fence + 1}
"""
)

COMPLETE = (
    LOST
    + """
local k = KEYS[1]
local r = redis.call('HMGET', k, 'state', 'token')
if r[1] ~= 'IN_PROGRESS' or r[2] ~= ARGV[1] then return 0 end
redis.call('HSET', k, 'state', ARGV[2], ARGV[3], ARGV[4], 'expires', ARGV[5])
redis.call('PEXPIRE', k, ARGV[6])
return 1
"""
)

RELEASE = (
    LOST
    + """
local r = redis.call('HMGET', KEYS[1], 'state', 'token')
if r[1] ~= 'IN_PROGRESS' or r[2] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""
)

PURGE_ONE = """
local r = redis.call('HMGET', KEYS[1], 'state', 'lease', 'expires')
local now = tonumber(ARGV[1])
local lease, expires = tonumber(r[2]), tonumber(r[3])
if expires == nil or expires > now then return 0 end
if r[1] == 'IN_PROGRESS' and lease ~= nil and lease > now then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""
