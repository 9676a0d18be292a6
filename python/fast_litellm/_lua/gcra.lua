-- fast_litellm rate limiter: one GCRA check of one key, atomically, on the Redis server.
--
-- The same file is run by the native path (embedded with include_str! in
-- src/ratelimit/redis.rs) and by the Python path (read by fast_litellm/ratelimit/redis_protocol.py), so
-- instances of both kinds can share keys. The rule is the in-process one, written out in
-- src/ratelimit/gcra.rs and python/fast_litellm/_fallback/ratelimit.py, in integer nanoseconds,
-- with the time taken from the server's TIME so the clocks of the instances do not matter.
--
-- KEYS[1]  the key of the request limit      "<prefix>:{<key>}:requests"
-- KEYS[2]  the key of the token limit        "<prefix>:{<key>}:tokens"
--          (one hash tag, so both live in one slot of a Redis Cluster)
-- ARGV     consume (1 = check and consume, 0 = peek),
--          request_interval_ns, request_burst, cost,
--          token_interval_ns, token_burst, tokens
--          (an interval of 0 means the limiter has no such limit)
--
-- Stored value of a limit: its tat (the instant its bucket is full again) as
-- "<seconds>:<nanoseconds>" of the server clock. Lua numbers are doubles, exact for integers up
-- to 2^53 only, and nanoseconds since 1970 are about 2^61; so absolute times stay split in two
-- and the rule runs on times relative to now, which the callers keep below 2^52 ns (a window of
-- up to 52 days). Each key expires (PX) when its bucket is full again: a full bucket and a
-- missing key mean the same, so nothing needs cleaning up.
--
-- Reply: { allowed (1/0), retry_after_ns (-1 = never: the amount exceeds the burst),
--          reset_after_ns, request_remaining, token_remaining } (-1 remaining = no such limit)

if redis.replicate_commands then
    -- Redis < 5 replicates scripts verbatim unless told otherwise; TIME makes this one
    -- non-deterministic, so its effects (the SETs) are what must be replicated.
    redis.replicate_commands()
end

local BILLION = 1000000000
local clock = redis.call('TIME')
local now_s = tonumber(clock[1])
local now_ns = tonumber(clock[2]) * 1000

-- floor(a / b) for integers 0 <= a < 2^53, 1 <= b, corrected for the rounding of the division.
local function div(a, b)
    local q = math.floor(a / b)
    if q * b > a then
        q = q - 1
    elseif (q + 1) * b <= a then
        q = q + 1
    end
    return q
end

-- max(tat - now, 0) of one stored limit: how far its tat runs ahead of now.
local function ahead(key)
    -- pcall: a key of another type under our name (WRONGTYPE) is a problem of that key only,
    -- never of the whole backend; it is read as a foreign value, like a string not ours.
    local stored = redis.pcall('GET', key)
    if not stored or type(stored) ~= 'string' then
        return 0
    end
    local s, ns = string.match(stored, '^(%d+):(%d+)$')
    if not s then
        return 0 -- not ours: treated as a full bucket, and overwritten when consumed
    end
    local d = (tonumber(s) - now_s) * BILLION + (tonumber(ns) - now_ns)
    if d < 0 then
        return 0
    end
    return d
end

-- One limit: a table with the verdict for `amount` units, or nil when the limit is absent.
local function verdict(key, interval, burst, amount)
    if interval <= 0 then
        return nil
    end
    local capacity = interval * burst
    local d = ahead(key)
    local remaining_now = 0
    if capacity > d then
        remaining_now = div(capacity - d, interval)
    end
    local v = { key = key, d = d, remaining_now = remaining_now }
    if amount > burst then
        v.fits = false
        v.retry_after = -1
        v.new_ahead = d
        return v
    end
    v.new_ahead = d + amount * interval
    if v.new_ahead <= capacity then
        v.fits = true
        v.retry_after = 0
        v.remaining_after = div(capacity - v.new_ahead, interval)
    else
        v.fits = false
        v.retry_after = v.new_ahead - capacity
    end
    return v
end

local consume = ARGV[1] == '1'
local request = verdict(KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
local token = verdict(KEYS[2], tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]))
local allowed = (request == nil or request.fits) and (token == nil or token.fits)

local retry_after = 0
local reset_after = 0
local remaining = { -1, -1 }
local limits = { request or false, token or false }
for slot = 1, 2 do
    local v = limits[slot]
    if v then
        local next_ahead = v.d
        if allowed then
            next_ahead = v.new_ahead
            remaining[slot] = v.remaining_after
            if consume and v.new_ahead ~= v.d then
                local at = now_ns + v.new_ahead
                local carry = div(at, BILLION)
                local stored = string.format('%.0f:%.0f', now_s + carry, at - carry * BILLION)
                redis.call('SET', v.key, stored, 'PX', div(v.new_ahead + 999999, 1000000))
            end
        else
            remaining[slot] = v.remaining_now
            if not v.fits and retry_after >= 0 then
                if v.retry_after < 0 then
                    retry_after = -1
                elseif v.retry_after > retry_after then
                    retry_after = v.retry_after
                end
            end
        end
        if next_ahead > reset_after then
            reset_after = next_ahead
        end
    end
end

return { allowed and 1 or 0, retry_after, reset_after, remaining[1], remaining[2] }
