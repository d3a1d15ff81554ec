"""The Redis twin of ``_transition.transition``, as one Lua script: one round trip a decision.

It mirrors the Python function line by line (same names, same order of operations, so the same
floating-point results); the conformance suite runs both on the same signals and compares.
KEYS: the store marker, the blocks index (a sorted set scored by block end), the audit outbox
(a list of records, oldest first), the outbox's id counter, then the rows (the subject's first).
ARGV: now, the policy's parameters, the checks, the ops force (or ""), consume, the subject's
member in the blocks index, the marker value the store expects, the outbox context
(``[actor, observer]`` as JSON, or "" to record nothing), the outbox cap.
"""

from __future__ import annotations

__all__ = ["APPLY"]

APPLY = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[7] then return 'lost' end
local now = tonumber(ARGV[1])
local p = cjson.decode(ARGV[2])
local checks = cjson.decode(ARGV[3])
local force = nil
if ARGV[4] ~= '' then force = cjson.decode(ARGV[4]) end
local consume = ARGV[5] == '1'
local rows = {}
local fresh = false
for i = 5, #KEYS do
  local raw = redis.call('GET', KEYS[i])
  if raw then rows[i - 4] = cjson.decode(raw) else rows[i - 4] = {} end
  if i == 5 and not raw then fresh = true end
end

local function weight(b, w) return (w - (now - b * w)) / w end

local function counter(row, name, w, amount)
  if not row.c then row.c = {} end
  local b = math.floor(now / w)
  local c = row.c[name]
  if not c then
    c = {b, 0, 0}; row.c[name] = c
  elseif c[1] ~= b then
    if c[1] == b - 1 then c[3] = c[2] else c[3] = 0 end
    c[2] = 0; c[1] = b
  end
  c[2] = c[2] + amount
  return c[3] * weight(b, w) + c[2]
end

local function peek(row, name, w)
  local c = row.c and row.c[name]
  if not c then return 0 end
  local b = math.floor(now / w)
  if c[1] == b then return c[3] * weight(b, w) + c[2] end
  if c[1] == b - 1 then return c[2] * weight(b, w) end
  return 0
end

local function distinct(row, name, w, member, limit)
  if not row.d then row.d = {} end
  local b = math.floor(now / w)
  local d = row.d[name]
  if not d then
    d = {b, 0, 0, {}}; row.d[name] = d
  elseif d[1] ~= b then
    if d[1] == b - 1 then
      local kept, n = {}, 0
      for m, mb in pairs(d[4]) do
        if mb == b - 1 then kept[m] = mb; n = n + 1 end
      end
      d[4] = kept; d[3] = n
    else
      d[4] = {}; d[3] = 0
    end
    d[2] = 0; d[1] = b
  end
  local members = d[4]
  local seen = members[member]
  if seen ~= b then
    if seen ~= nil then
      d[3] = d[3] - 1; members[member] = b
    elseif d[2] <= limit then
      members[member] = b
    end
    d[2] = d[2] + 1
  end
  return d[3] * weight(b, w) + d[2]
end

local function count_wait(c, w, limit)
  if not c then return 1 end
  local b = math.floor(now / w)
  local elapsed = now - b * w
  local cur, prev = 0, 0
  if c[1] == b then cur, prev = c[2], c[3] elseif c[1] == b - 1 then prev = c[2] end
  if limit < 1 then return 2 * w - elapsed end
  if cur + 1 <= limit and prev > 0 then
    return math.max(1, math.ceil(w * (1 - (limit - cur - 1) / prev)) - elapsed)
  end
  if cur + 1 <= limit then return 1 end
  local need = 0
  if cur > 0 then need = math.ceil(w * (1 - (limit - 1) / cur)) end
  return math.max(1, w - elapsed + need)
end

local function block_for(s)
  local off = (s.off or 0) + 1
  s.off = off; s.offat = now
  return now + p.ladder[math.min(off, #p.ladder)]
end

local s = rows[1]
for i = 1, #rows do
  if (rows[i].t or 0) > now then now = rows[i].t end
end
local tier = s.tier or 0
local was_blocked = tier == 3
local untl = s['until'] or 0
local expired = 0
if tier == 3 and now >= untl then
  expired = untl; tier = 2; untl = untl + p.hold[3]; s.strk = 0
end
while tier > 0 and tier < 3 and now >= untl do
  tier = tier - 1
  if tier > 0 then untl = untl + p.hold[tier + 1] else untl = 0 end
  s.strk = 0
end
if (s.off or 0) ~= 0 and now - (s.offat or 0) >= p.memory then s.off = 0 end
local from = tier
local allowed, retry, detector, reason = true, 0, '', ''
if force then
  if force[1] == 'block' then
    local base = 0
    if tier == 3 then base = untl end
    untl = math.max(base, now + force[2])
    tier = 3; allowed = false; detector = 'manual'; reason = force[3]
    retry = untl - now
  else
    tier = 0; untl = 0; detector = 'manual'; reason = force[3]
    s.c = {}; s.d = {}; s.strk = 0
  end
elseif tier == 3 then
  allowed = false; retry = untl - now
else
  local over, top = false, 0
  for _, ch in ipairs(checks) do
    local row = rows[ch[1] + 1]
    local kind, name, w, limit = ch[2], ch[3], ch[4], ch[5]
    local hit, wait = false, 0
    if kind == 'c' then
      local est = counter(row, name, w, ch[6])
      hit = limit >= 0 and est > limit
      if hit then wait = count_wait(row.c[name], w, limit) end
    elseif kind == 'd' then
      hit = distinct(row, name, w, ch[6], limit) > limit
      wait = 2 * w - now % w
    else
      local den = peek(row, ch[6], w)
      hit = den >= ch[10] and peek(row, name, w) >= limit * den
      wait = 2 * w - now % w
    end
    if hit then
      if ch[8] > top then top = ch[8]; detector = ch[7]; reason = ch[9] end
      if ch[8] >= 2 then over = true; retry = math.max(retry, wait) end
    end
  end
  if top > tier then
    tier = top; s.strk = 0
    if tier == 3 then untl = block_for(s) else untl = now + p.hold[tier + 1] end
  elseif top > 0 and tier < 3 then
    untl = math.max(untl, now + p.hold[tier + 1])
  end
  allowed = (not over) and tier < 3
  if tier == 2 and consume and allowed then
    if counter(s, 'thr', p.tw, 1) > p.tl then
      allowed = false
      retry = count_wait(s.c['thr'], p.tw, p.tl)
      if detector == '' then detector = 'throttle' end
      if reason == '' then
        reason = 'over the throttle rate of ' .. string.format('%d', p.tl) .. ' per window'
      end
    end
  end
  if (not allowed) and tier == 2 then
    local strikes = (s.strk or 0) + 1
    s.strk = strikes
    if p.strikes > 0 and strikes >= p.strikes then
      tier = 3; untl = block_for(s)
      detector = 'throttle'
      reason = string.format('%d', strikes) .. ' requests denied while throttled'
      s.strk = 0
    end
  end
  if tier == 3 then allowed = false; retry = untl - now end
end
local enforce, suppressed = 0, 0
if (not allowed) and not force then
  local win = math.floor(now / p.aw)
  if s.ew ~= win then
    enforce = 1; suppressed = s.es or 0; s.ew = win; s.es = 0
  else
    s.es = (s.es or 0) + 1
  end
end
local ok = 0
if allowed then ok = 1 end
local unblocked = force and force[1] == 'unblock'
if ARGV[8] ~= '' and (expired ~= 0 or tier > from or enforce == 1 or unblocked) then
  -- Checked before any write: at the cap the step is refused whole (fails closed).
  if redis.call('LLEN', KEYS[3]) >= tonumber(ARGV[9]) then return 'full' end
  local ctx = cjson.decode(ARGV[8])
  local who = cjson.decode(ARGV[6])
  local id = ARGV[7] .. '-' .. redis.call('INCR', KEYS[4])
  local why = ''
  if unblocked then why = 'u:' .. force[3] end
  redis.call('RPUSH', KEYS[3], cjson.encode({id, who[1], who[2], now, ctx[1], ctx[2], why,
    {tier, ok, math.max(0, retry), detector, reason, from, expired, enforce, suppressed,
     s.off or 0, untl}}))
end
s.tier = tier; s['until'] = untl
local expires = math.max(now, untl) + p.ret
for i = 1, #rows do
  rows[i].t = now; rows[i].x = expires
  redis.call('SET', KEYS[i + 4], cjson.encode(rows[i]), 'PX', expires - now)
end
if tier == 3 then
  redis.call('ZADD', KEYS[2], untl, ARGV[6])
elseif was_blocked or fresh then
  -- fresh: a row that expired by TTL may have left its entry in the blocks index.
  redis.call('ZREM', KEYS[2], ARGV[6])
end
-- One bulk string, not an array: one read for the client; the reason goes last (free text).
return string.format('%d\31%d\31%d\31%d\31%d\31%d\31%d\31%d\31%d\31', tier, ok,
  math.max(0, retry), from, expired, enforce, suppressed, s.off or 0, untl)
  .. detector .. '\31' .. reason
"""
