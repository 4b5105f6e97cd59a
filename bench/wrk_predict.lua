-- wrk load script for POST /predict, one review per request, rotating through a few texts.
--   wrk -t2 -c32 -d20s --latency -s bench/wrk_predict.lua http://127.0.0.1:8000
-- Set TOKEN=... in the environment when the server requires a bearer token.
local texts = {
  "这个产品质量非常好，值得购买！",
  "物流太慢了，包装也破了，很失望。",
  "酒店位置不错，服务也很周到，下次还会再来。",
  "屏幕有坏点，客服态度差，不推荐。",
}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("TOKEN")
if token then wrk.headers["Authorization"] = "Bearer " .. token end

request = function()
  i = i % #texts + 1
  return wrk.format(nil, "/predict", nil, '{"text": "' .. texts[i] .. '"}')
end
