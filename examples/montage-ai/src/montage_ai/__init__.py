"""montage-ai: plan the cuts of a video montage in a chosen editing style.

The library is pure Python (standard library only)::

    from montage_ai import get_style, plan_cuts
    edl = plan_cuts([12.0, 7.5, 20.0], get_style("hitchcock"))
"""

from .planner import Clip, Cut, EditDecisionList, plan_cuts
from .styles import STYLES, CutStyle, UnknownStyleError, get_style

__version__ = "0.3.0"

__all__ = [
    "Clip",
    "Cut",
    "CutStyle",
    "EditDecisionList",
    "STYLES",
    "UnknownStyleError",
    "__version__",
    "get_style",
    "plan_cuts",
]
