"""genzoo-infogan: InfoGAN (Chen et al. 2016) and info codes for any generative model, as plugins
of the small ``genzoo`` host that this package ships.

Importing the package (or any core module: codes, config, data, checkpoint, nets, ...) loads no
plugin; the host and its plugins are loaded by the ``genzoo`` command, the engine, and
:func:`load`, which use the installed plugins' registry.
"""

from __future__ import annotations

__version__ = "0.2.0.dev0"

from .hookspecs import hookimpl, hookspec  # noqa: E402
from .codes import Angle, Categorical, CodeSet, CodeSpec, Gaussian, Uniform  # noqa: E402
from .qhead import QHead  # noqa: E402
from .losses import info_loss, mi_lower_bound  # noqa: E402
from .errors import UserError  # noqa: E402
from .model import GenerativeModel, PhaseOutput, Reading  # noqa: E402
from .attach import attach_info_codes  # noqa: E402


def load(path, device="cpu", registry=None):
    """Load a model from a genzoo ``.safetensors`` file, or from a run folder (its
    ``model.safetensors``, else its ``checkpoint.safetensors``, as the command line does), with the
    installed plugins' registry (or ``registry``); see :func:`genzoo_infogan.checkpoint.load`."""
    from .checkpoint import find_model_file, load as load_file
    from .host import default_registry  # the plugins load on first use, not on import

    return load_file(find_model_file(path), registry if registry is not None else default_registry(), device=device)


__all__ = ["__version__", "hookimpl", "hookspec", "Angle", "Categorical", "CodeSet", "CodeSpec", "Gaussian",
           "Uniform", "QHead", "info_loss", "mi_lower_bound", "UserError", "GenerativeModel", "PhaseOutput",
           "Reading", "attach_info_codes", "load"]
