"""The single entry point: `python -m fairaug task=<name> <overrides>`."""

from __future__ import annotations

import hydra

from fairaug.config import register_configs
from fairaug.tasks.registry import run_task

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg) -> dict:
    return run_task(cfg)


if __name__ == "__main__":
    main()
