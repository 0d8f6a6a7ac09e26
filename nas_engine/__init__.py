"""NAS Studio's engine: profile a CSV (or convert an image upload), search MLP/CNN architectures under
constraints, refit the front, export verified bundles."""

from nas_engine.config import SearchConfig
from nas_engine.dataset import CsvLimits, detect_task
from nas_engine.diagram import LayerBox, describe_architecture, layer_diagram
from nas_engine.errors import ConstraintError, DatasetError, NasError, TargetError
from nas_engine.estimate import (
    DataShape,
    Estimate,
    GridTooLarge,
    NoNetworkFits,
    check_grid,
    check_limits,
    estimate_search,
)
from nas_engine.evaluation import evaluate_test_split
from nas_engine.export import export_bundle, predict_csv
from nas_engine.fidelity import Fidelity
from nas_engine.final_model import load_final_model
from nas_engine.finalize import FinalModel, FinalModels, finalize_front, refit, refit_on_all_rows
from nas_engine.image_archives import ArchiveLimits
from nas_engine.images import ImageSetProfile, convert_image_upload, is_image_upload, read_image_meta
from nas_engine.model_card import ModelCard, build_model_card, split_rows
from nas_engine.one_shot_phase import SUPERNET_FILE
from nas_engine.pareto import pareto_front, pareto_front_nd
from nas_engine.prepare import PreparedData, check_target, prepare_data
from nas_engine.profiling import (
    ColumnProfile,
    DatasetProfile,
    Distribution,
    LeakageSuspect,
    ProfileWarning,
    profile_csv,
)
from nas_engine.reference import Reference, reference_score
from nas_engine.results import Costs, SearchResult, StatusEvent, TrialResult, TrialStatus
from nas_engine.search import run_search
from nas_engine.selection import default_choice, knee_point
from nas_engine.spaces import SPACES, detect_image_shape
from nas_engine.strategies import STRATEGIES

__version__ = "0.2.0"


__all__ = [
    "SPACES",
    "STRATEGIES",
    "SUPERNET_FILE",
    "ArchiveLimits",
    "ColumnProfile",
    "ConstraintError",
    "Costs",
    "CsvLimits",
    "DataShape",
    "DatasetError",
    "DatasetProfile",
    "Distribution",
    "Estimate",
    "GridTooLarge",
    "FinalModel",
    "ImageSetProfile",
    "FinalModels",
    "Fidelity",
    "LayerBox",
    "LeakageSuspect",
    "ModelCard",
    "NasError",
    "NoNetworkFits",
    "PreparedData",
    "Reference",
    "ProfileWarning",
    "SearchConfig",
    "SearchResult",
    "TargetError",
    "StatusEvent",
    "TrialResult",
    "TrialStatus",
    "build_model_card",
    "check_grid",
    "check_limits",
    "check_target",
    "convert_image_upload",
    "default_choice",
    "describe_architecture",
    "detect_image_shape",
    "detect_task",
    "estimate_search",
    "evaluate_test_split",
    "export_bundle",
    "finalize_front",
    "is_image_upload",
    "knee_point",
    "layer_diagram",
    "load_final_model",
    "pareto_front",
    "pareto_front_nd",
    "predict_csv",
    "prepare_data",
    "profile_csv",
    "read_image_meta",
    "reference_score",
    "refit",
    "refit_on_all_rows",
    "run_search",
    "split_rows",
]
