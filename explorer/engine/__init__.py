"""The Qt-free engine: configs, the training loop, metrics, run folders, the Python API.

Nothing here imports Qt; what leaves the engine toward the UI is plain Python and
numpy (see :mod:`explorer.engine.events`).
"""

from .api import Run, load_run
from .config import ConfigError, DataConfig, RunConfig, TrainConfig
from .device import available_devices, resolve_device
from .events import DataReady, EpochReport, Event, Finished, ModelReady, ProbeReport, Status, StepReport
from .runfolder import RunFolderError
from .trainer import Trainer, TrainingError

__all__ = [
    "ConfigError",
    "DataConfig",
    "DataReady",
    "EpochReport",
    "Event",
    "Finished",
    "ModelReady",
    "ProbeReport",
    "Run",
    "RunConfig",
    "RunFolderError",
    "Status",
    "StepReport",
    "TrainConfig",
    "Trainer",
    "TrainingError",
    "available_devices",
    "load_run",
    "resolve_device",
]
