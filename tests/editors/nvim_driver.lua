-- Drives a headless Neovim like a user would (keys go through nvim_input, so insert mode,
-- mappings and autocommands behave as in a real session), then writes what it saw as JSON to
-- $PLUMLINE_TEST_OUT and quits. Scenario: $PLUMLINE_TEST_SCENARIO ("accept" or "protocol").
-- Each step waits for a condition with a deadline; a failure is written as {"error": ...}.
local api = vim.api
local plumline = require("plumline")
local out_path = assert(os.getenv("PLUMLINE_TEST_OUT"))
local scenario = os.getenv("PLUMLINE_TEST_SCENARIO") or "accept"
local result = { scenario = scenario, steps = {} }

local function finish()
  local fh = assert(io.open(out_path, "w"))
  fh:write(vim.json.encode(result))
  fh:close()
  vim.cmd("qa!")
end

local runner
local function sleep(ms)
  vim.defer_fn(function()
    local ok, err = coroutine.resume(runner)
    if not ok then
      result.error = tostring(err) .. "\n" .. debug.traceback(runner)
      finish()
    end
  end, ms)
  coroutine.yield()
end

local function wait(what, cond, timeout_ms)
  local deadline = vim.uv.now() + (timeout_ms or 10000)
  while true do
    local ok, value = pcall(cond)
    if ok and value then
      return value
    end
    if vim.uv.now() > deadline then
      error("timed out waiting for " .. what .. (ok and "" or (": " .. tostring(value))), 0)
    end
    sleep(20)
  end
end

local function keys(k)
  api.nvim_input(k)
  sleep(30)
end

local function ghost()
  local marks = api.nvim_buf_get_extmarks(0, plumline.namespace, 0, -1, { details = true })
  if #marks == 0 then
    return nil
  end
  local d = marks[1][4]
  local g = { row = marks[1][2], col = marks[1][3], text = d.virt_text and d.virt_text[1][1] or "", lines = {} }
  for _, l in ipairs(d.virt_lines or {}) do
    g.lines[#g.lines + 1] = l[1][1]
  end
  return g
end

local function lines()
  return api.nvim_buf_get_lines(0, 0, -1, false)
end

local function note(name, extra)
  local entry = { name = name, mode = api.nvim_get_mode().mode, lines = lines(), ghost = ghost(),
    cursor = api.nvim_win_get_cursor(0) }
  for k, v in pairs(extra or {}) do
    entry[k] = v
  end
  table.insert(result.steps, entry)
  return entry
end

local function client()
  return vim.lsp.get_clients({ name = "plumline", bufnr = 0 })[1]
end

local function stop_server()
  local c = client()
  if c then
    -- A request that runs after everything sent before it, then a clean shutdown so the
    -- server flushes its store.
    local done = false
    c:request("plumline/status", vim.empty_dict(), function(err, res)
      result.status = res
      result.status_err = err and err.message
      done = true
    end, 0)
    wait("plumline/status", function() return done end, 10000)
    c:stop()
    wait("server exit", function() return c:is_stopped() end, 10000)
  end
end

local scenarios = {}

-- Real server: ask, see ghost text, accept it with <Tab>.
function scenarios.accept()
  wait("client attached", function() return client() and client().initialized end, 60000)
  keys("GA")
  -- The automatic request comes first; if the model had nothing to say, ask explicitly.
  local g
  for attempt = 1, 5 do
    local ok = pcall(wait, "ghost text", ghost, attempt == 1 and 30000 or 10000)
    g = ghost()
    if ok and g then
      break
    end
    keys("<M-\\>")
  end
  g = wait("ghost text", ghost, 1000)
  local s = plumline.plugin.buffers[api.nvim_get_current_buf()].suggestion
  note("shown", { suggestion = s.text })
  result.item = s.item
  result.ghost = g
  keys("<Tab>")
  wait("accepted", function() return not vim.deep_equal(lines(), result.steps[1].lines) end)
  note("accepted")
  plumline.toggle(false) -- no further suggestions
  keys("<Esc>")
  stop_server()
end

-- Fake server: every report the plugin can send, in a known order.
function scenarios.protocol()
  wait("client attached", function() return client() and client().initialized end, 30000)
  keys("GA")
  wait("ghost text", ghost)
  note("shown")
  keys("ret") -- typing what the ghost text says keeps it
  note("typed-through")
  keys("<M-Right>")
  wait("word accepted", function() return lines()[#lines()]:match("return$") end)
  note("word")
  keys("<M-Down>")
  wait("line accepted", function() return lines()[#lines()]:match("return a %+ b$") end)
  note("line")
  keys("<C-]>")
  wait("dismissed", function() return ghost() == nil end)
  note("dismissed")
  keys("<CR>    z")
  wait("second suggestion", ghost)
  note("shown-2")
  keys("q") -- does not match: typed over, and a new suggestion follows
  wait("third suggestion", function()
    local g = ghost()
    return g and lines()[#lines()]:match("zq$") and g
  end)
  note("shown-3")
  keys("<Tab>")
  wait("accepted", function() return lines()[#lines()] == "    # done" end)
  note("accepted")
  wait("fourth suggestion", ghost)
  note("shown-4")
  keys("<Left>") -- the cursor leaves the suggestion: dismissed as moved, then asked again
  wait("fifth suggestion", function()
    local g = ghost()
    return g and api.nvim_win_get_cursor(0)[2] == 9 and g
  end)
  note("shown-5")
  keys("<Esc>")
  wait("left insert", function() return ghost() == nil and api.nvim_get_mode().mode == "n" end)
  note("escaped")
  stop_server()
end

-- Fake server answering after 0.5 s: typing while a request is in flight cancels it.
function scenarios.cancel()
  wait("client attached", function() return client() and client().initialized end, 30000)
  keys("GA")
  wait("request in flight", function()
    local b = plumline.plugin.buffers[api.nvim_get_current_buf()]
    return b and b.request
  end)
  keys("x")
  wait("ghost text", ghost)
  note("shown")
  keys("<Esc>")
  stop_server()
end

-- :checkhealth plumline with a server attached (its lines come back as `health`), then the
-- user commands (their messages come back as `messages`).
function scenarios.health()
  wait("client attached", function() return client() and client().initialized end, 30000)
  vim.cmd("checkhealth plumline")
  result.health = api.nvim_buf_get_lines(0, 0, -1, false)
  vim.cmd("bwipeout!")
  -- The user commands, with messages captured from vim.notify.
  result.messages = {}
  vim.notify = function(msg)
    table.insert(result.messages, msg)
  end
  vim.cmd("PlumlineTelemetry off")
  wait("telemetry answer", function() return #result.messages >= 1 end)
  vim.cmd("PlumlineStatus")
  wait("status answer", function() return #result.messages >= 2 end)
  vim.cmd("PlumlineTelemetry")
  wait("telemetry answer", function() return #result.messages >= 3 end)
  vim.cmd("PlumlineToggle")
  vim.cmd("PlumlineToggle on")
  stop_server()
end

runner = coroutine.create(function()
  local fn = scenarios[scenario]
  if not fn then
    error("unknown scenario " .. scenario)
  end
  fn()
  finish()
end)
local ok, err = coroutine.resume(runner)
if not ok then
  result.error = tostring(err)
  finish()
end
