"""The genzoo hooks: the whole reference a plugin author needs.

A plugin is a module or object with functions decorated by ``genzoo_infogan.hookimpl`` and named
like the specs below. Built-in plugins (``genzoo_infogan.plugins.*``) use exactly the same hooks.
An implementation may take fewer arguments than its spec (pluggy passes only the ones it names),
so specs can grow without breaking plugins.

Outside plugins are found through the entry-point group ``genzoo``::

    [project.entry-points.genzoo]
    my_plugin = "my_package.genzoo_plugin"
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("genzoo")
hookimpl = pluggy.HookimplMarker("genzoo")


@hookspec
def register_families(register):
    """Register model families.

    Call ``register(family)`` once per family. A family is an object with

    * ``name`` (str): the name recipes and checkpoints use (``family = "infogan"``);
    * ``description`` (str): one line for ``genzoo plugins``;
    * ``phases`` (tuple of str): the training phases in order, each with its own optimizer and
      learning rate (``[train] lr = {d = 2e-4, g = 1e-3}``);
    * ``settings``: a dataclass, the recipe's ``[model]`` table with its defaults in one place;
    * ``build(settings, codes: CodeSet, image_shape: tuple[int, int, int])`` ->
      :class:`genzoo_infogan.model.GenerativeModel`, whose ``phase_outputs`` returns a
      :class:`~genzoo_infogan.model.PhaseOutput`.

    ``settings`` is stored in checkpoints as JSON, and ``build`` must rebuild the same network from
    it with no recipe at hand. docs/plugins.md has a complete example.
    """


@hookspec
def register_code_types(register):
    """Register latent-code types usable in code specs (``"cat:10,uniform*2"``).

    Call ``register(cls)`` with a frozen dataclass subclassing
    :class:`genzoo_infogan.codes.CodeSpec`; its ``kind`` (and ``aliases``) become spec tokens.
    See ``genzoo_infogan/codes.py`` for the methods a code type implements (``sample``,
    ``entropy``, ``params``, ``log_q``, ``to_input``, ``point_estimate``, ``traversal``,
    ``from_args``, ``to_token``).
    """


@hookspec
def register_datasets(register):
    """Register datasets by name.

    Call ``register(name, loader, description)``. ``loader(cfg: dict)`` receives the recipe's
    ``[data]`` table and returns a :class:`genzoo_infogan.data.ImageData` (images as one float
    tensor in [0, 1] of shape ``(N, C, H, W)``, optional integer labels). Raise
    :class:`genzoo_infogan.errors.UserError` for problems the user can fix (missing files).
    """


@hookspec
def register_recipes(register):
    """Register recipes: named, versioned training set-ups run by ``genzoo run NAME``.

    Call ``register(recipe)`` with a dict shaped like a recipe TOML file (``name``, ``family``,
    ``description``, ``version``, ``codes``, and the ``[data]``, ``[model]``, ``[train]``,
    ``[info]``, ``[log]`` tables), or ``register(path)`` with the path of such a TOML file.
    Tables a recipe leaves out get the engine's defaults.
    """


@hookspec
def register_commands(cli):
    """Add click commands to the ``genzoo`` command line.

    ``cli`` is the top-level :class:`click.Group`; decorate functions with ``@cli.command()``.
    Raise :class:`genzoo_infogan.errors.UserError` for bad input: the CLI prints its message and
    exits with status 2.
    """


@hookspec
def loss_terms(phase, model, outputs, config, step):
    """Add loss terms to a training phase of any family.

    Called by the engine once per phase and step, after the family computed its own losses.
    ``phase`` is the phase name (``"d"``, ``"g"``, ``"vae"``, ...), ``model`` the
    :class:`~genzoo_infogan.model.GenerativeModel`, ``outputs`` the phase's
    :class:`~genzoo_infogan.model.PhaseOutput`, ``config`` the resolved recipe (a dict), ``step``
    the number of training steps already done (0 on the first), for terms with a schedule. An
    implementation may take only the arguments it needs.

    Return a dict ``{name: scalar tensor}`` of terms to add to the phase's loss, or ``None``; put
    detached scalars to log in ``outputs.metrics``. This is how info codes reach any family: the
    built-in ``infocodes`` plugin turns ``outputs.generated`` (Q's reading of images generated from
    known codes) into ``-sum_i lambda_i L_I_i``, and ``outputs.real`` (Q's reading of the real
    batch) into the recipe's optional real-data terms.
    """
