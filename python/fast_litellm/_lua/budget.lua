-- fast_litellm budgets: record spend for one key, or read it, atomically, on the Redis server.
--
-- The same file is run by the native path (embedded with include_str! in
-- src/budget/redis.rs) and by the Python path (read by fast_litellm/budget/redis_backend.py),
-- so instances of both kinds share keys. The window rule is the in-process one (src/budget/ and
-- python/fast_litellm/_fallback/budget.py), in microseconds here: Lua numbers are doubles,
-- exact for integers below 2^53, and Unix time in microseconds stays below that until 2255.
--
-- KEYS[1]  "<prefix>:budget:{<key>}": a hash with one field per window ("daily", "monthly",
--          "period:<length in microseconds>"), each "<id>:<spent>:<requests>" (id: the UTC day
--          or month number, or the start of a period in microseconds; spent in nanodollars).
--          Trackers of different windows on one prefix share the hash, each with its own field
--          (periods of different lengths too), and a record never shortens the key's life: it
--          expires when the last window of any of them ends, so nothing needs cleaning up.
--          (A period's field was "period" before lengths were in the name: it is still read
--          when the named one is missing, so spend recorded before carries over.)
-- ARGV     op ("record" | "read"), now_us ("" = the server's TIME, so instance clocks do not
--          matter), amount (nanodollars, record only), then one kind per window ("daily",
--          "monthly", or "period:<length in microseconds>").
--
-- Reply: { now_us, then per window: spent, requests, reset_at_us (-1 = a period not started) }

if redis.replicate_commands then
    -- Redis < 5 replicates scripts verbatim unless told otherwise; TIME makes this one
    -- non-deterministic, so its effects are what must be replicated.
    redis.replicate_commands()
end

local MAX = 9007199254740991 -- 2^53 - 1: the most a spent total holds
local DAY_US = 86400000000

local now
if ARGV[2] == '' then
    local clock = redis.call('TIME')
    now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
else
    now = tonumber(ARGV[2])
end
local record = ARGV[1] == 'record'
local amount = tonumber(ARGV[3]) or 0

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

-- Howard Hinnant's civil_from_days / days_from_civil (as in src/budget/calendar.rs).
local function civil_from_days(days)
    local z = days + 719468
    local era = div(z, 146097)
    local doe = z - era * 146097
    local yoe = div(doe - div(doe, 1460) + div(doe, 36524) - div(doe, 146096), 365)
    local doy = doe - (365 * yoe + div(yoe, 4) - div(yoe, 100))
    local mp = div(5 * doy + 2, 153)
    local month = mp < 10 and mp + 3 or mp - 9
    local year = yoe + era * 400
    if month <= 2 then
        year = year + 1
    end
    return year, month
end

local function days_from_civil(year, month)
    if month <= 2 then
        year = year - 1
    end
    local era = div(year, 400)
    local yoe = year - era * 400
    local mp = month > 2 and month - 3 or month + 9
    local doy = div(153 * mp + 2, 5)
    local doe = yoe * 365 + div(yoe, 4) - div(yoe, 100) + doy
    return era * 146097 + doe - 719468
end

-- The id and end (us) of the calendar window holding now; nil for a period.
local function calendar(kind)
    local day = div(now, DAY_US)
    if kind == 'daily' then
        return day, (day + 1) * DAY_US
    elseif kind == 'monthly' then
        local year, month = civil_from_days(day)
        local next_day
        if month == 12 then
            next_day = days_from_civil(year + 1, 1)
        else
            next_day = days_from_civil(year, month + 1)
        end
        return year * 12 + month - 1, next_day * DAY_US
    end
    return nil, nil
end

local key = KEYS[1]
local reply = { now }
local fields = {}
local expire_at = 0
for i = 4, #ARGV do
    local kind = ARGV[i]
    local period = nil
    local name = kind
    local legacy = nil
    if string.sub(kind, 1, 7) == 'period:' then
        period = tonumber(string.sub(kind, 8))
        legacy = 'period'
    end
    -- pcall: a key of another type under our name (WRONGTYPE) reads as empty and is replaced.
    local stored = redis.pcall('HGET', key, name)
    if legacy and type(stored) ~= 'string' then
        stored = redis.pcall('HGET', key, legacy)
    end
    local id, spent, requests = nil, 0, 0
    if type(stored) == 'string' then
        local a, b, c = string.match(stored, '^(%d+):(%d+):(%d+)$')
        if a then
            id, spent, requests = tonumber(a), tonumber(b), tonumber(c)
        end
    end
    local current_id, ends = calendar(kind)
    local current
    if period then
        current = id ~= nil and requests > 0 and now < id + period
        if current then
            ends = id + period
        end
    else
        current = id ~= nil and requests > 0 and id == current_id
    end
    if not current then
        spent, requests = 0, 0
    end
    if record then
        if not current then
            id = period and now or current_id
            if period then
                ends = now + period
            end
        end
        spent = math.min(spent + amount, MAX)
        requests = requests + 1
        fields[#fields + 1] = name
        fields[#fields + 1] = string.format('%.0f:%.0f:%.0f', id, spent, requests)
        if ends - now > expire_at then
            expire_at = ends - now
        end
    end
    reply[#reply + 1] = spent
    reply[#reply + 1] = requests
    reply[#reply + 1] = ends or -1
end

if record then
    if redis.call('TYPE', key).ok ~= 'hash' then
        redis.call('DEL', key)
    end
    -- The key lives until the end of the last window recorded into it, by this tracker or any
    -- other on the prefix: a daily record just before midnight must not expire a monthly total.
    local keep_ms = div(expire_at + 999, 1000)
    local left_ms = redis.call('PTTL', key)
    redis.call('HSET', key, unpack(fields))
    if left_ms < keep_ms then
        redis.call('PEXPIRE', key, keep_ms)
    end
end
return reply
