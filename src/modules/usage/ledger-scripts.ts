// Lua for the Redis budget ledger (redis-ledger.ts). A counter is one hash: `um`/`ut` what was spent
// (micros, tokens), and per process `p:<id>` = "<lease micros> <lease tokens> <in flight micros> <in flight
// tokens> <expires at, ms>": the room that process holds and the estimates of its calls under way. Time is
// Redis's own clock, so processes with skewed clocks agree on when a lease has expired.

// Reads one counter: what was spent, and the leases and in-flight estimates of the other live processes.
// A lease not renewed in time belonged to a process that died: it is dropped, and its room is free again.
const READ_COUNTER = `
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local function counter(key, me)
  local fields = redis.call('HGETALL', key)
  local c = { used = {0, 0}, mine = {0, 0}, leased = {0, 0}, inflight = {0, 0} }
  for f = 1, #fields, 2 do
    local name, v = fields[f], fields[f + 1]
    if name == 'um' then c.used[1] = tonumber(v)
    elseif name == 'ut' then c.used[2] = tonumber(v)
    elseif name == me then
      local lm, lt = string.match(v, '^(%S+) (%S+)')
      c.mine = {tonumber(lm), tonumber(lt)}
    elseif string.sub(name, 1, 2) == 'p:' then
      local lm, lt, im, it, exp = string.match(v, '^(%S+) (%S+) (%S+) (%S+) (%S+)$')
      if tonumber(exp) < now then redis.call('HDEL', key, name)
      else
        c.leased = {c.leased[1] + tonumber(lm), c.leased[2] + tonumber(lt)}
        c.inflight = {c.inflight[1] + tonumber(im), c.inflight[2] + tonumber(it)}
      end
    end
  end
  return c
end
`;

/**
 * One trip for a process's counters: writes back what was spent, gives back lease room, and sizes each
 * lease anew. KEYS: counters. ARGV: the process's field, lease lifetime in ms, '1' when a call waits on
 * the answer (then all or nothing, and a missing counter is reported for seeding; otherwise a counter gone
 * with its period is skipped), then 12 integers per key in (micros, tokens) pairs: spent since the last
 * trip, room given back, estimates in flight, the waiting call's estimate (-1: none), free room wanted,
 * limit (-1: none). Returns status, the index of the first counter without room (0: none), then each
 * counter's lease (-1 when gone).
 *
 * A grant never exceeds the room nobody holds, so used + every lease stays within the limit: only calls
 * spending more than their estimate go beyond it. It is at most a quarter of that room, so leases shrink
 * near the limit until a grant is exactly what the waiting call needs (one trip per call, as without leases).
 */
export const SYNC = `${READ_COUNTER}
local me, ttl, call = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
if call then
  for i = 1, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 0 then return {'missing', i} end
  end
end
local plans, over = {}, 0
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local c = counter(KEYS[i], me)
    local a = 3 + (i - 1) * 12
    local p = { key = KEYS[i], a = a, lease = {0, 0}, grant = {0, 0} }
    for d = 1, 2 do
      local spent, back, inflight = tonumber(ARGV[a + d]), tonumber(ARGV[a + 2 + d]), tonumber(ARGV[a + 4 + d])
      local need, want, limit = tonumber(ARGV[a + 6 + d]), tonumber(ARGV[a + 8 + d]), tonumber(ARGV[a + 10 + d])
      p.lease[d] = math.max(0, c.mine[d] - spent - back)
      if limit >= 0 then
        local free = p.lease[d] - inflight
        local room = limit - c.used[d] - spent - c.leased[d] - p.lease[d]
        -- At or over the limit even a zero estimate is refused: a call needs at least one unit of room.
        if need >= 0 and free + room < math.max(need, 1) and over == 0 then over = i end
        local g = math.min(want - free, math.floor(room / 4))
        if need >= 0 then g = math.max(g, math.max(need, 1) - free) end
        p.grant[d] = math.max(0, math.min(g, room))
      end
    end
    plans[i] = p
  end
end
local out = {over == 0 and 'ok' or 'over', over}
for i = 1, #KEYS do
  local p = plans[i]
  if p then
    redis.call('HINCRBY', p.key, 'um', ARGV[p.a + 1])
    redis.call('HINCRBY', p.key, 'ut', ARGV[p.a + 2])
    if over == 0 then p.lease = {p.lease[1] + p.grant[1], p.lease[2] + p.grant[2]} end
    if p.lease[1] == 0 and p.lease[2] == 0 and ARGV[p.a + 5] == '0' and ARGV[p.a + 6] == '0' then
      redis.call('HDEL', p.key, me)
    else
      redis.call('HSET', p.key, me, string.format('%d %d %s %s %d', p.lease[1], p.lease[2], ARGV[p.a + 5], ARGV[p.a + 6], now + ttl))
    end
    table.insert(out, p.lease[1])
    table.insert(out, p.lease[2])
  else
    table.insert(out, -1)
    table.insert(out, -1)
  end
end
return out`;

// KEYS: counters. ARGV[1]: the reading process's field. Per key: 1 if it exists, what was spent (micros,
// tokens) and the other live processes' estimates in flight.
export const READ = `${READ_COUNTER}
local out = {}
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    for _ = 1, 5 do table.insert(out, 0) end
  else
    local c = counter(KEYS[i], ARGV[1])
    for _, v in ipairs({1, c.used[1], c.used[2], c.inflight[1], c.inflight[2]}) do table.insert(out, v) end
  end
end
return out`;

// KEYS[1]: counter. ARGV: used micros, used tokens, expire-at unix seconds (0 = never). Only the first seed counts.
export const SEED = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'um', ARGV[1], 'ut', ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('EXPIREAT', KEYS[1], ARGV[3]) end
return 1`;

// KEYS: counters. ARGV: micros, tokens spent by a call that reserved nothing on them (a budget set while it ran).
// A counter that does not exist is left alone: whoever seeds it counts the call from its usage event.
export const ADD = `
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HINCRBY', KEYS[i], 'um', ARGV[1])
    redis.call('HINCRBY', KEYS[i], 'ut', ARGV[2])
  end
end
return 0`;
