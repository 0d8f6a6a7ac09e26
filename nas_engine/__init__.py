"""NAS Studio's engine: profile a CSV, search MLP architectures under constraints, export bundles."""

from nas_engine.config import SearchConfig
from nas_engine.dataset import ColumnProfile, DatasetProfile, detect_task, profile_csv
from nas_engine.errors import ConstraintError, DatasetError, NasError, SearchCancelled
from nas_engine.export import export_bundle, load_model, predict_csv
from nas_engine.pareto import pareto_front
from nas_engine.prepare import PreparedData, prepare_data
from nas_engine.results import Costs, SearchResult, StatusEvent, TrialResult, TrialStatus
from nas_engine.search import run_search
from nas_engine.strategies import STRATEGIES

__version__ = "0.1.0"

__all__ = [
    "STRATEGIES",
    "ColumnProfile",
    "ConstraintError",
    "Costs",
    "DatasetError",
    "DatasetProfile",
    "NasError",
    "PreparedData",
    "SearchCancelled",
    "SearchConfig",
    "SearchResult",
    "StatusEvent",
    "TrialResult",
    "TrialStatus",
    "detect_task",
    "export_bundle",
    "load_model",
    "pareto_front",
    "predict_csv",
    "prepare_data",
    "profile_csv",
    "run_search",
]
