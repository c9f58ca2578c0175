"""XianKe 鲜课: CLI and wiring (composition root)."""
