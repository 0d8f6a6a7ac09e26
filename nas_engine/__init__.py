"""NAS Studio's engine: profile a CSV, search MLP/CNN architectures under constraints, refit the front,
export verified bundles."""

from nas_engine.config import SearchConfig
from nas_engine.dataset import ColumnProfile, DatasetProfile, detect_task, profile_csv
from nas_engine.errors import ConstraintError, DatasetError, NasError, SearchCancelled
from nas_engine.export import export_bundle, predict_csv
from nas_engine.fidelity import Fidelity
from nas_engine.finalize import FinalModel, FinalModels, finalize_front, load_final_model, refit
from nas_engine.pareto import pareto_front, pareto_front_nd
from nas_engine.prepare import PreparedData, prepare_data
from nas_engine.results import Costs, SearchResult, StatusEvent, TrialResult, TrialStatus
from nas_engine.search import run_search
from nas_engine.spaces import SPACES, detect_image_shape
from nas_engine.strategies import STRATEGIES

__version__ = "0.2.0"

load_model = load_final_model  # one loader for single networks and ensembles

__all__ = [
    "SPACES",
    "STRATEGIES",
    "ColumnProfile",
    "ConstraintError",
    "Costs",
    "DatasetError",
    "DatasetProfile",
    "FinalModel",
    "FinalModels",
    "Fidelity",
    "NasError",
    "PreparedData",
    "SearchCancelled",
    "SearchConfig",
    "SearchResult",
    "StatusEvent",
    "TrialResult",
    "TrialStatus",
    "detect_image_shape",
    "detect_task",
    "export_bundle",
    "finalize_front",
    "load_final_model",
    "load_model",
    "pareto_front",
    "pareto_front_nd",
    "predict_csv",
    "prepare_data",
    "profile_csv",
    "refit",
    "run_search",
]
