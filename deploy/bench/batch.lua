-- wrk script: POST /v1/batch with 20 realistic events per request, each with a unique messageId.
-- The write key comes from the environment (TRIBUTARY_BENCH_KEY).
local key = os.getenv("TRIBUTARY_BENCH_KEY")
local counter = 0
local thread_id = 0

local function b64(data)
  local chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  return ((data:gsub('.', function(x)
    local r, b = '', x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return chars:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end

setup = function(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
end

init = function(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Basic " .. b64(key .. ":")
end

request = function()
  counter = counter + 1
  local events = {}
  for i = 1, 20 do
    events[i] = string.format(
      '{"type":"track","event":"Product Viewed","userId":"user-%d","messageId":"m-%d-%d-%d",' ..
      '"timestamp":"2026-11-25T18:43:14.123Z","properties":{"product_id":"sku-%d","price":19.99,' ..
      '"currency":"EUR","category":"Shoes","url":"https://shop.example.com/p/sku-%d?utm_source=newsletter"},' ..
      '"context":{"page":{"path":"/p/sku-%d","referrer":"https://www.google.com/"},"userAgent":' ..
      '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",' ..
      '"locale":"en-US"}}', i, id or 0, counter, i, i, i, i)
  end
  return wrk.format(nil, "/v1/batch", nil, '{"batch":[' .. table.concat(events, ",") .. '],"sentAt":"2026-11-25T18:43:14.200Z"}')
end
