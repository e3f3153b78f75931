-- Requests for one benchmark scenario (BENCH_SCENARIO), varied so no two are the same.
local scenario = os.getenv("BENCH_SCENARIO") or "reference"
local max_id = tonumber(os.getenv("BENCH_MAX_ID") or "1000")
local t0 = tonumber(os.getenv("BENCH_T0") or "0")
local t1 = tonumber(os.getenv("BENCH_T1") or "1")
local data_dir = os.getenv("BENCH_DATA") or "."
-- Searches ask for this mode when set (bench/search_modes.py); the server's default otherwise.
local mode = os.getenv("BENCH_MODE")
local mode_param = mode and ("&mode=" .. mode) or ""

local function lines(name)
  local items = {}
  local file = io.open(data_dir .. "/" .. name, "r")
  if file then
    for line in file:lines() do items[#items + 1] = line end
    file:close()
  end
  return items
end

local words = lines("words.txt")
local phrases = lines("phrases.txt")
local filters = lines("filters.txt")
local revalidations = lines("etags.txt")
-- Requests are made up front in init(), so that the load tool spends its time on the sockets
-- rather than on formatting (wrk shares the machine with the server). Each thread makes its
-- own: more than a run sends, so no request repeats.
local PER_THREAD = 30000
local requests = {}
local counter = 0

local thread_number = 0
function setup(thread)
  thread_number = thread_number + 1
  thread:set("number", thread_number)
end

local function pick(list) return list[math.random(#list)] end

local function encode(text)
  return (text:gsub(" ", "+"):gsub('"', "%%22"))
end

local function make()
  if scenario == "reference" then
    return wrk.format("GET", "/")
  elseif scenario == "list" then
    local before = os.date("!%Y-%m-%dT%H:%M:%SZ", math.random(t0, t1))
    return wrk.format("GET", "/v1/articles?limit=20&published_before=" .. before .. pick(filters))
  elseif scenario == "detail" then
    return wrk.format("GET", "/v1/articles/" .. math.random(max_id))
  elseif scenario == "related" then
    return wrk.format("GET", "/v1/articles/" .. math.random(max_id) .. "/related")
  elseif scenario == "search1" then
    return wrk.format("GET", "/v1/search?limit=20" .. mode_param .. "&q=" .. encode(pick(words)))
  elseif scenario == "search2" then
    return wrk.format("GET", "/v1/search?limit=20" .. mode_param .. "&q=" .. encode(pick(words) .. " " .. pick(words)))
  elseif scenario == "phrase" then
    return wrk.format("GET", "/v1/search?limit=20" .. mode_param .. "&q=" .. encode('"' .. pick(phrases) .. '"'))
  end
end

function init(args)
  math.randomseed((number or 1) * 7919 + os.time())
  if scenario == "revalidate" then
    -- The ETag of one of 500 details: the same request may come again, as polling does.
    for _, line in ipairs(revalidations) do
      local tab = line:find("\t")
      local path, etag = line:sub(1, tab - 1), line:sub(tab + 1)
      requests[#requests + 1] = wrk.format("GET", path, { ["If-None-Match"] = etag })
    end
  else
    for i = 1, (scenario == "reference" and 1 or PER_THREAD) do requests[i] = make() end
  end
end

function request()
  counter = counter + 1
  if scenario == "revalidate" then return pick(requests) end
  return requests[(counter - 1) % #requests + 1]
end
