-- plumline user commands. Loading this file starts nothing: call require("plumline").setup({}).
if vim.g.loaded_plumline then
  return
end
vim.g.loaded_plumline = true

local function plumline()
  return require("plumline")
end

vim.api.nvim_create_user_command("PlumlineToggle", function(args)
  local arg = args.args
  plumline().toggle(arg == "on" and true or arg == "off" and false or nil)
end, {
  nargs = "?",
  complete = function()
    return { "on", "off" }
  end,
  desc = "plumline: turn inline completions on/off",
})

vim.api.nvim_create_user_command("PlumlineTelemetry", function(args)
  local arg = args.args
  local enabled = nil -- no argument: flip
  if arg == "on" then
    enabled = true
  elseif arg == "off" then
    enabled = false -- (`arg == "off" and false or nil` is nil: Lua's and/or cannot yield false)
  end
  plumline().telemetry(enabled)
end, {
  nargs = "?",
  complete = function()
    return { "on", "off" }
  end,
  desc = "plumline: turn logging of suggestions on/off (plumline/telemetry)",
})

vim.api.nvim_create_user_command("PlumlineStatus", function()
  plumline().status()
end, { desc = "plumline: model, adapter, backend and logging state" })
