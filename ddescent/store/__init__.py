"""Results on disk, in rooms by concern: where files live (paths), who is writing (locks), a run's file (runs),
and reading run files back (reading). See each module; this face only hands their names on."""

from ddescent.store.locks import HOST, LOCK_STALE_S, Claim, claim, clean_stale, process_alive, process_token
from ddescent.store.paths import (checkpoints_dir, damaged_dir, experiment_folders, figures_dir, finals_dir, logs_dir,
                                  quarantine, run_path, runs_dir)
from ddescent.store.reading import COLUMNS, REQUIRED, STATUSES, conform, load, load_quietly, read_run, run_files
from ddescent.store.runs import (check_run, is_done, log_training, set_aside_if_damaged, trainings, write_atomic,
                                 write_run)

__all__ = ["COLUMNS", "HOST", "LOCK_STALE_S", "REQUIRED", "STATUSES", "Claim", "check_run", "checkpoints_dir",
           "claim", "clean_stale", "conform", "damaged_dir", "experiment_folders", "figures_dir", "finals_dir", "is_done", "load", "load_quietly", "log_training",
           "logs_dir", "process_alive", "process_token", "quarantine", "read_run", "run_files", "run_path",
           "runs_dir", "set_aside_if_damaged", "trainings", "write_atomic", "write_run"]
