"""task=app: the interactive generation app on a trained model, bound to the loopback
interface unless app.host says otherwise (fairaug/generation_app.py builds it)."""

from __future__ import annotations

import logging
from pathlib import Path

from fairaug.errors import ConfigError
from fairaug.runtime import start_run

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def run(cfg) -> dict:
    if not cfg.generation.model:
        raise ConfigError("task=app needs generation.model=<a controlnet_train run directory>")
    try:
        from fairaug.generation_app import build_app
    except ImportError as error:
        raise ConfigError(f"task=app needs Gradio: pip install 'fairaug[app]' ({error})") from error
    from fairaug.diffusion.generator import Generator

    folder = start_run(cfg)
    folder.write_config(cfg)
    generator = Generator(cfg.generation.model, str(cfg.generation.dtype))  # loaded once, for every request
    output = Path(cfg.app.output) if cfg.app.output else folder.path
    host = str(cfg.app.host)
    if host not in LOOPBACK:
        log.warning("app.host=%s: the app is reachable from other machines on this network", host)
    app = build_app(generator, cfg.generation, output)
    log.info("Generation app on http://%s:%d (Ctrl+C stops it); saving into %s", host, int(cfg.app.port), output)
    app.queue().launch(server_name=host, server_port=int(cfg.app.port), share=False, show_error=False,
                       inbrowser=False)  # fmt: skip
    return {"output": str(output)}
