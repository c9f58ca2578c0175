"""CLI command groups, one module each; xianke.cli registers them."""
