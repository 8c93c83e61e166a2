--- :checkhealth plumline — is Neovim new enough, is setup{} called, can the server start and answer.
local M = {}

local health = vim.health

function M.check()
  health.start("plumline")

  local v = vim.version()
  local version = ("%d.%d.%d"):format(v.major, v.minor, v.patch)
  if vim.fn.has("nvim-0.10") ~= 1 then
    health.error("Neovim " .. version .. " is too old: plumline needs 0.10+ (inline virtual text)")
    return
  end
  health.ok("Neovim " .. version)

  local plumline = require("plumline")
  local p = plumline.plugin
  if not p then
    health.warn('setup() has not been called', { 'Add require("plumline").setup({}) to your config' })
    return
  end
  health.ok("setup() called; completions " .. (p.enabled and "on" or "off"))
  if p.native then
    health.ok("using vim.lsp.inline_completion (Neovim 0.12+)")
    health.info("native mode reports accepts only; set native = false to also report shown/partial/dismissed")
  else
    health.ok(("plugin ghost text: auto_trigger=%s, debounce %d ms"):format(
      tostring(p.opts.auto_trigger), p.opts.debounce_ms))
  end

  local cmd = p.opts.cmd
  local exe = type(cmd) == "table" and cmd[1] or nil
  if type(cmd) == "function" then
    health.info("cmd is a function; not checked")
  elseif not exe or vim.fn.executable(exe) ~= 1 then
    health.error(("server command %s is not executable"):format(vim.inspect(cmd)), {
      "Install plumline (pip install plumline) or set cmd = { '/path/to/plumline', 'serve' } in setup()",
    })
  else
    health.ok(("server command: %s (%s)"):format(table.concat(cmd, " "), vim.fn.exepath(exe)))
  end

  local get_clients = vim.lsp.get_clients or vim.lsp.get_active_clients
  local clients = get_clients({ name = plumline.CLIENT_NAME })
  if #clients == 0 then
    health.info("no plumline server running yet (open a file of an enabled filetype)")
    return
  end
  for _, client in ipairs(clients) do
    local provider = client.server_capabilities and client.server_capabilities.inlineCompletionProvider
    local where = client.config and client.config.root_dir or "?"
    if provider then
      health.ok(("client %d (root %s) advertises inlineCompletionProvider"):format(client.id, where))
    else
      health.error(("client %d (root %s) lacks inlineCompletionProvider"):format(client.id, where))
    end
    local ok, resp
    if vim.fn.has("nvim-0.11") == 1 then
      ok, resp = pcall(client.request_sync, client, "plumline/status", vim.empty_dict(), 3000)
    else
      ok, resp = pcall(client.request_sync, "plumline/status", vim.empty_dict(), 3000)
    end
    if ok and resp and resp.result then
      health.ok(plumline.format_status(resp.result))
    else
      local why = not ok and tostring(resp) or resp and resp.err and resp.err.message or "timeout"
      health.warn("plumline/status did not answer: " .. why)
    end
  end
end

return M
