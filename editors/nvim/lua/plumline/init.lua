--- plumline for Neovim: inline (ghost-text) completions from `plumline serve`, and the reports
--- that let plumline learn which suggestions you keep.
---
--- What it does
---   * Starts the language server with `vim.lsp.start` (one client per project root) in every
---     buffer whose filetype is enabled.
---   * Neovim 0.12+ with `native = "auto"` (default): hands inline completion to
---     `vim.lsp.inline_completion`, which inserts the text and executes the item's command
---     (`plumline.accept`). Neovim does not report shown / partial / dismissed there; set
---     `native = false` to use this plugin's own ghost text, which reports all of them.
---   * Neovim 0.10 / 0.11 (or `native = false`): requests `textDocument/inlineCompletion` itself
---     after `debounce_ms` of quiet in insert mode (cancelling the request in flight when you type),
---     draws the suggestion with extmarks (first line inline, the rest as virtual lines), and sends
---     exactly what docs/protocol.md asks for:
---       shown          textDocument/didShowCompletion            {item}
---       accept (all)   workspace/executeCommand plumline.accept   (the item's command)
---       accept word/line  textDocument/didPartiallyAcceptCompletion {item, acceptedLength}
---       dismissed      plumline/didDismissCompletion              {item, reason}
---                      reason: "escape" (<C-]>, leaving insert mode, toggling off),
---                              "typed-over" (you typed something else), "moved" (cursor moved away)
---
--- Use: `require("plumline").setup({})`, then `:PlumlineStatus`, `:PlumlineToggle`,
--- `:PlumlineTelemetry [on|off]`, `:checkhealth plumline`. See docs/editors.md.

local api = vim.api

local M = {}

--- Defaults; every key can be overridden in setup{}.
M.defaults = {
  -- The server command (LSP over stdio).
  cmd = { "plumline", "serve" },
  -- Filetypes to attach to; nil means every buffer that is a file on disk.
  filetypes = nil,
  -- Files that mark a project root (one server per root); the file's folder otherwise.
  root_markers = { ".git", "pyproject.toml", "setup.py", "package.json", "Cargo.toml", "go.mod" },
  -- Ask for a suggestion automatically while typing in insert mode.
  auto_trigger = true,
  -- Quiet time in insert mode before asking, in milliseconds.
  debounce_ms = 150,
  -- "auto": vim.lsp.inline_completion on Neovim 0.12+; false: always this plugin's ghost text.
  native = "auto",
  -- Highlight group for the ghost text (linked to Comment unless you define it).
  hl_group = "PlumlineSuggestion",
  -- Insert-mode keys; set one to false to leave that key alone. Each falls back to the key's
  -- normal meaning (or the mapping it had before) when no suggestion is shown.
  keymaps = {
    accept = "<Tab>",
    accept_word = "<M-Right>",
    accept_line = "<M-Down>",
    dismiss = "<C-]>",
    trigger = "<M-\\>",
  },
}

local CLIENT_NAME = "plumline"
local ns = api.nvim_create_namespace("plumline")
local augroup_name = "plumline"

---@class plumline.Suggestion
---@field client_id integer
---@field bufnr integer
---@field item table       the InlineCompletionItem exactly as the server sent it
---@field text string      its insertText
---@field row integer      0-based row of range.start
---@field col integer      byte column of range.start
---@field tick integer     b:changedtick when last checked
---@field shown boolean
---@field extmark integer?

--- The running plugin: options and per-buffer state live here, not in loose globals.
local Plugin = {}
Plugin.__index = Plugin

function Plugin.new(opts)
  local self = setmetatable({}, Plugin)
  self.opts = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  self.enabled = true
  self.native = self.opts.native ~= false
    and vim.lsp.inline_completion ~= nil
    and type(vim.lsp.inline_completion.enable) == "function"
  ---@type table<integer, {timer: uv_timer_t?, request: {client_id: integer, id: integer}?, suggestion: plumline.Suggestion?, mapped: boolean?}>
  self.buffers = {}
  return self
end

-- Compatibility shims: Neovim 0.11 made client methods use `:`; 0.10 used `.`.
local has_011 = vim.fn.has("nvim-0.11") == 1

local function client_request(client, method, params, handler, bufnr)
  if has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local function client_notify(client, method, params)
  if has_011 then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

local function client_cancel(client, id)
  if has_011 then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

local function get_clients(filter)
  return (vim.lsp.get_clients or vim.lsp.get_active_clients)(filter)
end

--- Byte column of an LSP position in `bufnr`, honouring the client's position encoding.
local function byte_col(bufnr, pos, encoding)
  local line = api.nvim_buf_get_lines(bufnr, pos.line, pos.line + 1, false)[1] or ""
  if encoding == "utf-8" then
    return math.min(pos.character, #line)
  end
  local ok, col = pcall(vim.str_byteindex, line, encoding, pos.character, false) -- 0.11+
  if not ok then
    ok, col = pcall(vim.str_byteindex, line, pos.character, encoding == "utf-16") -- 0.10
  end
  return ok and col or #line
end

local function termcodes(keys)
  return api.nvim_replace_termcodes(keys, true, false, true)
end

function Plugin:buf(bufnr)
  local b = self.buffers[bufnr]
  if not b then
    b = {}
    self.buffers[bufnr] = b
  end
  return b
end

function Plugin:client_for(bufnr)
  return get_clients({ name = CLIENT_NAME, bufnr = bufnr })[1]
end

-- ---------------------------------------------------------------------------------------------
-- Starting the server

function Plugin:wants(bufnr)
  if not api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= "" then
    return false
  end
  if api.nvim_buf_get_name(bufnr) == "" then
    return false
  end
  local ft = vim.bo[bufnr].filetype
  if self.opts.filetypes == nil then
    return ft ~= ""
  end
  return vim.tbl_contains(self.opts.filetypes, ft)
end

function Plugin:root_dir(bufnr)
  local name = api.nvim_buf_get_name(bufnr)
  local root = vim.fs.root and vim.fs.root(bufnr, self.opts.root_markers)
  if not root then
    local found = vim.fs.find(self.opts.root_markers, { path = vim.fs.dirname(name), upward = true })[1]
    root = found and vim.fs.dirname(found)
  end
  return root or vim.fs.dirname(name)
end

function Plugin:start(bufnr)
  if not self:wants(bufnr) then
    return
  end
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  capabilities.textDocument = capabilities.textDocument or {}
  capabilities.textDocument.inlineCompletion = capabilities.textDocument.inlineCompletion
    or { dynamicRegistration = false }
  return vim.lsp.start({
    name = CLIENT_NAME,
    cmd = self.opts.cmd,
    root_dir = self:root_dir(bufnr),
    capabilities = capabilities,
  }, { bufnr = bufnr })
end

function Plugin:on_attach(bufnr, client)
  if self.native then
    vim.lsp.inline_completion.enable(self.enabled, { bufnr = bufnr })
  end
  self:map_keys(bufnr)
end

-- ---------------------------------------------------------------------------------------------
-- Requesting

function Plugin:cancel(bufnr)
  local b = self.buffers[bufnr]
  if not b then
    return
  end
  if b.timer then
    b.timer:stop()
    b.timer:close()
    b.timer = nil
  end
  if b.request then
    local client = vim.lsp.get_client_by_id(b.request.client_id)
    if client then
      client_cancel(client, b.request.id)
    end
    b.request = nil
  end
end

--- Restart the debounce timer; when it fires, ask for a suggestion at the cursor.
function Plugin:schedule(bufnr)
  self:cancel(bufnr)
  if not (self.enabled and self.opts.auto_trigger) then
    return
  end
  local b = self:buf(bufnr)
  local timer = vim.uv.new_timer()
  b.timer = timer
  timer:start(self.opts.debounce_ms, 0, vim.schedule_wrap(function()
    if b.timer ~= timer then
      return
    end
    timer:close()
    b.timer = nil
    self:request(bufnr, 2) -- InlineCompletionTriggerKind.Automatic
  end))
end

---@param trigger_kind integer 1 = Invoked, 2 = Automatic
function Plugin:request(bufnr, trigger_kind)
  if not self.enabled or bufnr ~= api.nvim_get_current_buf() then
    return
  end
  local client = self:client_for(bufnr)
  if not client then
    return
  end
  self:cancel(bufnr)
  local win = api.nvim_get_current_win()
  local params = vim.lsp.util.make_position_params(win, client.offset_encoding)
  params.context = { triggerKind = trigger_kind }
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local cursor = api.nvim_win_get_cursor(win)
  local b = self:buf(bufnr)
  local ok, id
  ok, id = client_request(client, "textDocument/inlineCompletion", params, function(err, result)
    if b.request and b.request.id == id then
      b.request = nil
    end
    if err or not result then
      return
    end
    -- Drop answers to a question that no longer stands (the user typed or moved meanwhile).
    if api.nvim_get_current_buf() ~= bufnr
      or api.nvim_buf_get_changedtick(bufnr) ~= tick
      or not vim.deep_equal(api.nvim_win_get_cursor(0), cursor)
      or not vim.startswith(api.nvim_get_mode().mode, "i")
    then
      return
    end
    local items = result.items or result
    if type(items) == "table" and items[1] then
      self:present(bufnr, client, items[1])
    end
  end, bufnr)
  if ok then
    b.request = { client_id = client.id, id = id }
  end
end

-- ---------------------------------------------------------------------------------------------
-- Showing

function Plugin:present(bufnr, client, item)
  -- An older suggestion still up (an explicit <M-\> ask): the server marks it superseded.
  self:clear(bufnr)
  local text = item.insertText
  if type(text) == "table" then -- a StringValue snippet: show and insert its raw value
    text = text.value
  end
  if type(text) ~= "string" or text == "" then
    return
  end
  local row, col
  if item.range then
    row = item.range.start.line
    col = byte_col(bufnr, item.range.start, client.offset_encoding)
  else
    local cursor = api.nvim_win_get_cursor(0)
    row, col = cursor[1] - 1, cursor[2]
  end
  local s = {
    client_id = client.id,
    bufnr = bufnr,
    item = item,
    text = text,
    row = row,
    col = col,
    tick = api.nvim_buf_get_changedtick(bufnr),
    shown = false,
  }
  self:buf(bufnr).suggestion = s
  if not self:render(s) then
    self:buf(bufnr).suggestion = nil
  end
end

--- The part of the suggestion the buffer already holds (between range.start and the cursor), or
--- nil when the buffer no longer agrees with the suggestion.
local function typed_prefix(s)
  local cursor = api.nvim_win_get_cursor(0)
  local r, c = cursor[1] - 1, cursor[2]
  if r < s.row or (r == s.row and c < s.col) then
    return nil
  end
  local ok, lines = pcall(api.nvim_buf_get_text, s.bufnr, s.row, s.col, r, c, {})
  if not ok then
    return nil
  end
  local typed = table.concat(lines, "\n")
  if s.text:sub(1, #typed) ~= typed then
    return nil
  end
  return typed
end

--- Draw what is left of the suggestion at the cursor. Returns false when nothing is left.
function Plugin:render(s)
  local typed = typed_prefix(s)
  if not typed then
    return false
  end
  local rest = s.text:sub(#typed + 1)
  if rest == "" then
    self:clear(s.bufnr)
    return false
  end
  local lines = vim.split(rest, "\n", { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], self.opts.hl_group } }
  end
  local cursor = api.nvim_win_get_cursor(0)
  s.extmark = api.nvim_buf_set_extmark(s.bufnr, ns, cursor[1] - 1, cursor[2], {
    id = s.extmark,
    virt_text = { { lines[1], self.opts.hl_group } },
    virt_text_pos = "inline",
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = "combine",
  })
  s.tick = api.nvim_buf_get_changedtick(s.bufnr)
  if not s.shown then
    s.shown = true
    self:send(s, "textDocument/didShowCompletion", { item = s.item })
  end
  return true
end

function Plugin:clear(bufnr)
  local b = self.buffers[bufnr]
  if b and b.suggestion then
    pcall(api.nvim_buf_clear_namespace, bufnr, ns, 0, -1)
    b.suggestion = nil
  end
end

function Plugin:send(s, method, params)
  local client = vim.lsp.get_client_by_id(s.client_id)
  if client then
    client_notify(client, method, params)
  end
end

--- Hide the suggestion and tell the server why (a no-op when none is shown).
---@param reason "escape"|"typed-over"|"moved"
function Plugin:dismiss(bufnr, reason)
  local b = self.buffers[bufnr]
  local s = b and b.suggestion
  if not s then
    return false
  end
  self:clear(bufnr)
  if s.shown then
    self:send(s, "plumline/didDismissCompletion", { item = s.item, reason = reason })
  end
  return true
end

-- ---------------------------------------------------------------------------------------------
-- Accepting

function Plugin:visible(bufnr)
  local b = self.buffers[bufnr or api.nvim_get_current_buf()]
  return b ~= nil and b.suggestion ~= nil
end

--- Insert `chunk` at the cursor and leave the cursor after it.
local function insert_at_cursor(bufnr, chunk)
  local cursor = api.nvim_win_get_cursor(0)
  local r, c = cursor[1] - 1, cursor[2]
  local lines = vim.split(chunk, "\n", { plain = true })
  api.nvim_buf_set_text(bufnr, r, c, r, c, lines)
  if #lines == 1 then
    api.nvim_win_set_cursor(0, { r + 1, c + #chunk })
  else
    api.nvim_win_set_cursor(0, { r + #lines, #lines[#lines] })
  end
end

local function next_word(rest)
  return rest:match("^%s*[%w_]+") or rest:match("^%s*[^%w_%s]+") or rest:match("^%s+") or rest
end

local function next_line(rest)
  return rest:match("^[^\n]+") or rest:match("^\n[^\n]*") or rest
end

---@param how "all"|"word"|"line"
function Plugin:accept(how)
  local bufnr = api.nvim_get_current_buf()
  local b = self.buffers[bufnr]
  local s = b and b.suggestion
  if not s then
    return false
  end
  local typed = typed_prefix(s)
  if not typed then
    self:dismiss(bufnr, "moved")
    return false
  end
  local rest = s.text:sub(#typed + 1)
  local chunk = rest
  if how == "word" then
    chunk = next_word(rest)
  elseif how == "line" then
    chunk = next_line(rest)
  end
  insert_at_cursor(bufnr, chunk)
  if chunk == rest then
    -- Everything is in: a full accept, reported by running the item's command.
    self:clear(bufnr)
    local client = vim.lsp.get_client_by_id(s.client_id)
    if client and s.item.command then
      client_request(client, "workspace/executeCommand", {
        command = s.item.command.command,
        arguments = s.item.command.arguments,
      }, function() end, bufnr)
    end
  else
    self:render(s)
    self:send(s, "textDocument/didPartiallyAcceptCompletion", {
      item = s.item,
      acceptedLength = vim.fn.strchars(s.text:sub(1, #typed + #chunk)),
    })
  end
  return true
end

-- ---------------------------------------------------------------------------------------------
-- Keys

--- What a key did before we mapped it, so it still works when no suggestion is shown.
local function fallback_for(bufnr, lhs)
  local m = vim.fn.maparg(lhs, "i", false, true)
  if type(m) ~= "table" or vim.tbl_isempty(m) or (m.desc or ""):match("^plumline") then
    return function()
      return termcodes(lhs)
    end
  end
  if m.callback then
    if m.expr == 1 then
      return m.callback
    end
    return function()
      vim.schedule(m.callback)
      return ""
    end
  end
  local rhs = m.rhs or lhs
  if m.expr == 1 then
    return function()
      return vim.fn.eval(rhs)
    end
  end
  return function()
    return termcodes(rhs)
  end
end

function Plugin:map_keys(bufnr)
  local b = self:buf(bufnr)
  if b.mapped then
    return
  end
  b.mapped = true
  local keys = self.opts.keymaps or {}
  local function map(lhs, desc, action)
    if not lhs then
      return
    end
    local fallback = fallback_for(bufnr, lhs)
    vim.keymap.set("i", lhs, function()
      if action() then
        return ""
      end
      return fallback()
    end, { buffer = bufnr, expr = true, replace_keycodes = false, desc = "plumline: " .. desc })
  end
  -- Expression mappings may not change the buffer, so the work is scheduled right after.
  if self.native then
    map(keys.accept, "accept suggestion", function()
      return vim.lsp.inline_completion.get({ bufnr = bufnr }) and true or false
    end)
    return
  end
  local function when_visible(fn)
    return function()
      if not self:visible(bufnr) then
        return false
      end
      vim.schedule(fn)
      return true
    end
  end
  map(keys.accept, "accept suggestion", when_visible(function()
    self:accept("all")
  end))
  map(keys.accept_word, "accept next word", when_visible(function()
    self:accept("word")
  end))
  map(keys.accept_line, "accept next line", when_visible(function()
    self:accept("line")
  end))
  map(keys.dismiss, "dismiss suggestion", when_visible(function()
    self:dismiss(bufnr, "escape")
  end))
  map(keys.trigger, "ask for a suggestion", function()
    if not self.enabled then
      return false
    end
    vim.schedule(function()
      self:request(bufnr, 1) -- Invoked
    end)
    return true
  end)
end

-- ---------------------------------------------------------------------------------------------
-- Editor events (plugin-rendered mode)

--- The buffer or cursor changed: keep, trim or dismiss the suggestion, then maybe ask again.
function Plugin:on_change(bufnr)
  if not self:client_for(bufnr) then
    return
  end
  local b = self:buf(bufnr)
  local s = b.suggestion
  if s then
    if typed_prefix(s) and self:render(s) then
      return -- still agrees with what is on screen (the user typed it, or accepted a part)
    end
    if b.suggestion then
      local changed = api.nvim_buf_get_changedtick(bufnr) ~= s.tick
      self:dismiss(bufnr, changed and "typed-over" or "moved")
    end
  end
  self:schedule(bufnr)
end

function Plugin:on_leave(bufnr, reason)
  self:cancel(bufnr)
  self:dismiss(bufnr, reason)
end

function Plugin:autocmds()
  local group = api.nvim_create_augroup(augroup_name, { clear = true })
  api.nvim_create_autocmd("FileType", {
    group = group,
    callback = function(args)
      self:start(args.buf)
    end,
  })
  api.nvim_create_autocmd("LspAttach", {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == CLIENT_NAME then
        self:on_attach(args.buf, client)
      end
    end,
  })
  api.nvim_create_autocmd("LspDetach", {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == CLIENT_NAME then
        self:cancel(args.buf)
        self:clear(args.buf)
      end
    end,
  })
  api.nvim_create_autocmd("BufWipeout", {
    group = group,
    callback = function(args)
      self:cancel(args.buf)
      self.buffers[args.buf] = nil
    end,
  })
  if self.native then
    return
  end
  api.nvim_create_autocmd({ "TextChangedI", "TextChangedP", "CursorMovedI" }, {
    group = group,
    callback = function(args)
      self:on_change(args.buf)
    end,
  })
  api.nvim_create_autocmd("InsertEnter", {
    group = group,
    callback = function(args)
      if self:client_for(args.buf) then
        self:schedule(args.buf)
      end
    end,
  })
  api.nvim_create_autocmd("InsertLeave", {
    group = group,
    callback = function(args)
      self:on_leave(args.buf, "escape")
    end,
  })
  api.nvim_create_autocmd("BufLeave", {
    group = group,
    callback = function(args)
      self:on_leave(args.buf, "moved")
    end,
  })
end

-- ---------------------------------------------------------------------------------------------
-- Public API

---@type table?
M.plugin = nil

--- Configure plumline and attach it to matching buffers (including ones already open).
function M.setup(opts)
  if not vim.g.loaded_plumline then
    -- the user commands, when the plugin manager did not source editors/nvim/plugin/ (lazy.nvim
    -- sources only the plugin/ folder at the repository's root)
    vim.cmd("runtime! plugin/plumline.lua")
  end
  local p = Plugin.new(opts)
  M.plugin = p
  api.nvim_set_hl(0, "PlumlineSuggestion", { link = "Comment", default = true })
  p:autocmds()
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(bufnr) then
      p:start(bufnr)
    end
  end
  return p
end

local function plugin_or_warn()
  if not M.plugin then
    vim.notify('plumline: call require("plumline").setup({}) first', vim.log.levels.WARN)
  end
  return M.plugin
end

--- Turn inline completions on or off (nil flips).
function M.toggle(on)
  local p = plugin_or_warn()
  if not p then
    return
  end
  if on == nil then
    on = not p.enabled
  end
  p.enabled = on
  for bufnr in pairs(p.buffers) do
    if not on then
      p:on_leave(bufnr, "escape")
    end
    if p.native and api.nvim_buf_is_valid(bufnr) then
      vim.lsp.inline_completion.enable(on, { bufnr = bufnr })
    end
  end
  vim.notify("plumline: completions " .. (on and "on" or "off"))
  return on
end

local function any_client(bufnr)
  return get_clients({ name = CLIENT_NAME, bufnr = bufnr })[1] or get_clients({ name = CLIENT_NAME })[1]
end

--- Ask the server to turn suggestion logging on, off, or (nil) flip it. Calls back with the result.
--- The server only sets what it is told; flipping asks for the state first, then sends the opposite.
function M.telemetry(enabled, callback)
  local client = any_client(api.nvim_get_current_buf())
  if not client then
    vim.notify("plumline: no server is running for this buffer", vim.log.levels.WARN)
    return
  end
  if enabled == nil then
    client_request(client, "plumline/telemetry", vim.empty_dict(), function(err, result)
      if err or type(result) ~= "table" then
        local why = err and (err.message or vim.inspect(err)) or ("unexpected answer " .. vim.inspect(result))
        vim.notify("plumline: telemetry: " .. why, vim.log.levels.ERROR)
        if callback then
          callback(err, result)
        end
      else
        M.telemetry(not result.enabled, callback)
      end
    end)
    return
  end
  local params = { enabled = enabled }
  client_request(client, "plumline/telemetry", params, function(err, result)
    if err or type(result) ~= "table" then
      local why = err and (err.message or vim.inspect(err)) or ("unexpected answer " .. vim.inspect(result))
      vim.notify("plumline: telemetry: " .. why, vim.log.levels.ERROR)
    else
      vim.notify("plumline: logging " .. (result.enabled and "on" or "off"))
    end
    if callback then
      callback(err, result)
    end
  end)
end

--- One line describing the server: model, adapter, backend, queue, logging, version.
function M.format_status(st)
  return ("plumline %s: model %s, adapter %s, backend %s, queue %s, logging %s"):format(
    tostring(st.version), tostring(st.model), tostring(st.adapter), tostring(st.backend),
    tostring(st.queueDepth), st.telemetry and "on" or "off")
end

function M.status(callback)
  local p = M.plugin
  local client = any_client(api.nvim_get_current_buf())
  if not client then
    vim.notify("plumline: no server is running (is this buffer's filetype enabled?)", vim.log.levels.WARN)
    return
  end
  client_request(client, "plumline/status", vim.empty_dict(), function(err, result)
    if err or type(result) ~= "table" then
      local why = err and (err.message or vim.inspect(err)) or ("unexpected answer " .. vim.inspect(result))
      vim.notify("plumline: status: " .. why, vim.log.levels.ERROR)
    else
      local mode = p and (p.native and "native inline completion" or "plugin ghost text") or "?"
      local on = p and p.enabled and "on" or "off"
      vim.notify(M.format_status(result) .. ("; completions %s (%s)"):format(on, mode))
    end
    if callback then
      callback(err, result)
    end
  end)
end

-- Entry points for keymaps of your own, e.g. vim.keymap.set("i", "<C-l>", require("plumline").accept_word)
function M.accept()
  return M.plugin and M.plugin:accept("all")
end
function M.accept_word()
  return M.plugin and M.plugin:accept("word")
end
function M.accept_line()
  return M.plugin and M.plugin:accept("line")
end
function M.dismiss()
  return M.plugin and M.plugin:dismiss(api.nvim_get_current_buf(), "escape")
end
function M.is_visible()
  return M.plugin ~= nil and M.plugin:visible()
end
M.CLIENT_NAME = CLIENT_NAME
M.namespace = ns

return M
