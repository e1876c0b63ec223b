"""Deprecated: the B-cos networks moved to kdlab.bcos, and kdlab.bcos.register_models()
registers them. Older copies of notebook 05 import this module for its side effect of
registering them, so importing it still does, with a DeprecationWarning; its names are
forwarded to kdlab.bcos."""

import warnings

from .. import bcos
from ..runtime.moved import moved_names

warnings.warn("kdlab.experiments.bcos_models moved to kdlab.bcos; call kdlab.bcos.register_models() "
              "instead of importing it", DeprecationWarning, stacklevel=2)
bcos.register_models()

__getattr__ = moved_names(__name__, {name: "kdlab.bcos" for name in (
    "BcosClassifier", "small_bcos_resnet", "bcos_imagenet_model", "IMAGENET_ENTRY_POINTS")})
