"""genzoo-infogan: InfoGAN (Chen et al. 2016) and info codes for any generative model, as plugins
of the small ``genzoo`` host that this package ships."""

from __future__ import annotations

__version__ = "0.1.0"

from .hookspecs import hookimpl, hookspec  # noqa: E402
from .codes import Categorical, CodeSet, CodeSpec, Gaussian, Uniform  # noqa: E402
from .qhead import QHead  # noqa: E402
from .losses import info_loss, mi_lower_bound  # noqa: E402
from .errors import UserError  # noqa: E402


def load(path, device="cpu"):
    """Load a model from a genzoo ``.safetensors`` file; see :func:`genzoo_infogan.checkpoint.load`."""
    from .checkpoint import load as _load

    return _load(path, device=device)


def __getattr__(name):
    if name == "attach_info_codes":
        from .attach import attach_info_codes

        return attach_info_codes
    raise AttributeError(name)


__all__ = ["__version__", "hookimpl", "hookspec", "Categorical", "CodeSet", "CodeSpec", "Gaussian",
           "Uniform", "QHead", "info_loss", "mi_lower_bound", "UserError", "load", "attach_info_codes"]
