-- Minimal Neovim config for the editor tests: only the plumline plugin from this repository.
-- Env: PLUMLINE_NVIM_PLUGIN (editors/nvim), PLUMLINE_TEST_CMD (JSON list: the server command).
vim.opt.runtimepath:prepend(assert(os.getenv("PLUMLINE_NVIM_PLUGIN"), "PLUMLINE_NVIM_PLUGIN unset"))
vim.opt.swapfile = false
vim.opt.shadafile = "NONE"
local cmd = os.getenv("PLUMLINE_TEST_CMD")
require("plumline").setup({
  cmd = cmd and vim.json.decode(cmd) or nil,
  filetypes = { "python" },
  debounce_ms = 30,
})
