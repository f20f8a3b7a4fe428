"""How the app lays text out, beyond what Textual and Rich do: :mod:`tui.text.cjk`
(line breaks for Chinese)."""
