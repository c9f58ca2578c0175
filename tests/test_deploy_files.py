"""Deployment files, checked without a container engine: every command compose and the Dockerfile run is
a real `xianke` command with real options, torch is pinned, the image runs as a non-root user with a
/healthz check, and every XIANKE_* variable they mention is a real setting."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from core.settings import ENV_PREFIX, Settings
from xianke.cli import app as cli_app

REPO = Path(__file__).resolve().parents[1]
EXTRA_ENV = {"XIANKE_HEALTHCHECK_URL"}  # read by the image's HEALTHCHECK, not by Settings


def _is_group(command: Any) -> bool:
    return hasattr(command, "list_commands")  # typer ships its own click; duck-type rather than isinstance


def resolve(args: list[str]) -> Any:
    """The click command `xianke <args>` would run; fails on an unknown command or option."""
    command: Any = typer.main.get_command(cli_app)
    ctx = command.context_class(command)
    words = list(args)
    while words and _is_group(command) and not words[0].startswith("-"):
        sub = command.get_command(ctx, words[0])
        assert sub is not None, f"`xianke {' '.join(args)}`: no command {words[0]!r}"
        command, words = sub, words[1:]
        ctx = command.context_class(command, parent=ctx)
    assert not _is_group(command), f"`xianke {' '.join(args)}` names a group, not a command"
    known = {opt for param in command.params for opt in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]}
    for word in words:
        if word.startswith("--"):
            assert word.split("=", 1)[0] in known, f"`xianke {' '.join(args)}`: unknown option {word}"
    return command


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text(encoding="utf-8")


def test_compose_services_run_real_cli_commands(compose: dict) -> None:
    services = compose["services"]
    assert {"bot", "scheduler", "ingest", "redis"} <= set(services)
    ours = {name: s for name, s in services.items() if s.get("image", "").startswith("xianke")}
    assert set(ours) == {"bot", "scheduler", "ingest"}
    for name, service in ours.items():
        resolve(service["command"])
        assert service["volumes"] == ["xianke-data:/data"], name
    # Exactly one scheduler: the dedicated service. Bot workers (maybe several) must not run their own.
    assert services["bot"]["command"][:2] == ["serve", "--webhook"]
    if "--with-scheduler" in {o for p in resolve(["serve"]).params for o in getattr(p, "opts", [])}:
        assert "--without-scheduler" in services["bot"]["command"]
    assert services["scheduler"]["command"] == ["jobs", "start"]
    assert services["ingest"]["command"][0] == "serve-ingest" and services["ingest"]["profiles"] == ["ingest"]
    assert services["redis"]["profiles"] == ["redis"]
    # Only loopback ports: TLS and public exposure belong to the reverse proxy in front.
    for service in services.values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port
    assert "scale" not in str(services["scheduler"]) and "replicas" not in str(services["scheduler"])


def test_dockerfile_pins_torch_runs_as_non_root_and_checks_health(dockerfile: str) -> None:
    assert re.search(r"^ARG TORCH_VERSION=2\.13\.0$", dockerfile, re.M)
    assert 'pip install "torch==${TORCH_VERSION}"' in dockerfile
    torch_at, project_at = dockerfile.index("torch==${TORCH_VERSION}"), dockerfile.index("pip install . ")
    assert torch_at < project_at, "torch must be installed before the project"
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in dockerfile and "healthz" in dockerfile
    runs = [m.strip() for line in re.findall(r"^RUN (.*)$", dockerfile, re.M)
            for m in re.findall(r"(?:^|\s)xianke\s+([a-z][a-z -]*?)(?=\s*(?:&&|>|$))", line)]
    assert "models build" in runs, runs  # the encoder is baked into the image
    for run in runs:
        resolve(run.split())
    cmd = re.search(r'^CMD (\[.*\])$', dockerfile, re.M)
    assert cmd is not None
    resolve(yaml.safe_load(cmd.group(1)))
    entrypoint = (REPO / "docker" / "entrypoint.sh").read_text(encoding="utf-8")
    assert 'exec xianke "$@"' in entrypoint


def test_every_xianke_variable_is_a_real_setting(compose: dict, dockerfile: str) -> None:
    fields = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    texts = [dockerfile, (REPO / "compose.yaml").read_text(encoding="utf-8"),
             (REPO / ".env.example").read_text(encoding="utf-8")]
    mentioned = {var for text in texts for var in re.findall(r"\bXIANKE_[A-Z_]+\b", text)}
    assert mentioned - fields - EXTRA_ENV == set()
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    for required in ("XIANKE_TELEGRAM_TOKEN", "XIANKE_WEBHOOK_URL", "XIANKE_WEBHOOK_SECRET", "XIANKE_STAFF_CHAT_ID",
                     "XIANKE_MARKETER_CHAT_IDS", "XIANKE_ADMIN_USER_IDS"):
        assert re.search(rf"^{required}=", example, re.M), required


def test_dockerignore_keeps_secrets_and_state_out_of_the_image() -> None:
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    for entry in (".env", ".venv", "var", ".git", "*.db"):
        assert entry in ignored, entry
