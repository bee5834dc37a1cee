"""logger=wandb: one Weights & Biases run per ddescent run. Needs pip install "ddescent[wandb]"."""

from __future__ import annotations

import os
from urllib.parse import urlparse

from ddescent.checks import Rule
from ddescent.loggers.base import Logger, logs_dir, run_name


def wandb_mode(settings: dict) -> str | None:
    """logger.mode if set; None (W&B's own choice) when the user configured W&B (WANDB_MODE, WANDB_API_KEY, or a
    `wandb login` in ~/.netrc); else offline, so that nothing leaves the machine by surprise."""
    if settings.get("mode"):
        return settings["mode"]
    if os.environ.get("WANDB_MODE") or os.environ.get("WANDB_API_KEY"):
        return None
    try:
        import netrc

        host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
        if host and netrc.netrc().authenticators(host):
            return None
    except (OSError, netrc.NetrcParseError):
        pass
    return "offline"


class _Wandb:
    """A W&B run per ddescent run: project = the experiment, group = the experiment (the sweep's runs together),
    name = what a sweep varies (mlp-w47-n4000-s0, as MLflow and TensorBoard name it; see run_name), the run id as
    a tag and as `ddescent.run_id` in the summary, config = the resolved config; created with reinit="create_new" so
    the runs of a pack are open side by side; files under <results>/<experiment>/_logs/wandb/."""

    def __init__(self, settings: dict, run: dict):
        import wandb

        folder = logs_dir(run, "wandb").parent
        folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=settings.get("project") or run["experiment"], entity=settings.get("entity"),
            name=run_name(run.get("config") or {}), group=run["experiment"], tags=[run["run_id"]],
            notes=run.get("label"), config=run.get("config") or {}, dir=str(folder),
            mode=wandb_mode(settings), reinit="create_new",
            # console="off": W&B would otherwise wrap sys.stdout of the whole process, once per open run
            settings=wandb.Settings(console="off", silent=True, x_disable_stats=True, disable_git=True,
                                    save_code=False))
        self.run.summary["ddescent.run_id"] = run["run_id"]

    def log(self, row: dict, step: int) -> None:
        self.run.log(row, step=step)

    def close(self, status: str, summary: dict) -> None:
        self.run.summary.update({**summary, "status": status})
        self.run.finish(exit_code=1 if status == "failed" else 0)

    def abandon(self) -> None:
        self.run.finish(exit_code=1)


_optional_text = Rule(lambda v: v is None or (isinstance(v, str) and v.strip() != ""), "null or a non-empty string")
LOGGER = Logger("wandb", open=_Wandb, extra="wandb", rules={
    "logger.mode": Rule(lambda v: v in (None, "online", "offline", "disabled"), "null, online, offline or disabled"),
    "logger.entity": _optional_text,
    "logger.project": _optional_text,
})
