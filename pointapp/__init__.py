"""pointapp: stand up the production environment of a containerized web service on AWS, step by step.

The public API, used by the CLI and the notebooks::

    import pointapp
    with pointapp.connect(env="prod") as ctx:      # the shared emulator unless told otherwise
        planned = pointapp.plan(ctx, only="network")
        print(planned)
        pointapp.apply(ctx, planned)

Each name is imported from its module on first use: a command imports only what it uses (``up`` needs no
audit, diagram or CloudFormation export). The step list is imported at once: lower layers ask it, through
hooks it sets, for the names every step builds (the spec's name check) and for a step's outputs.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the names below are, for type checkers; at run time each is imported on first use
    from pointapp.audit import audit
    from pointapp.emulator import Emulator
    from pointapp.engine import apply, discover, down, finish_destroy, inventory, plan, plan_destroy, status, up
    from pointapp.errors import ConfirmationRequired, DependencyError, PointappError, SpecError, StepError, TargetError
    from pointapp.facts import describe
    from pointapp.plan import Change, Outcome, Plan, Table
    from pointapp.spec import Spec, load_spec
    from pointapp.steps import STEP_NAMES, STEPS, steps_table
    from pointapp.target import Context, Target, connect, resolve_target

__version__ = "0.1.0"

#: Where each public name lives.
_HOMES = {
    "audit": ("audit",),
    "emulator": ("Emulator",),
    "engine": ("apply", "discover", "down", "finish_destroy", "inventory", "plan", "plan_destroy", "status", "up"),
    "facts": ("describe",),
    "errors": ("ConfirmationRequired", "DependencyError", "PointappError", "SpecError", "StepError", "TargetError"),
    "plan": ("Change", "Outcome", "Plan", "Table"),
    "spec": ("Spec", "load_spec"),
    "steps": ("STEP_NAMES", "STEPS", "steps_table"),
    "target": ("Context", "Target", "connect", "resolve_target"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "STEPS",
    "STEP_NAMES",
    "Change",
    "ConfirmationRequired",
    "Context",
    "DependencyError",
    "Emulator",
    "Outcome",
    "Plan",
    "PointappError",
    "Spec",
    "SpecError",
    "StepError",
    "Table",
    "Target",
    "TargetError",
    "apply",
    "audit",
    "connect",
    "describe",
    "discover",
    "down",
    "finish_destroy",
    "inventory",
    "status",
    "load_spec",
    "plan",
    "plan_destroy",
    "steps_table",
    "resolve_target",
    "up",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its module the first time it is asked for (PEP 562)."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'pointapp' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pointapp.{module}"), name)
    globals()[name] = value  # asked once: the next lookup finds it here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


class _Package(types.ModuleType):
    """The package, whose public ``plan`` and ``audit`` are functions although modules of the same names exist.

    Importing a submodule sets it as an attribute of its package; the functions keep those two names instead
    (``pointapp.plan`` is :func:`pointapp.engine.plan`, as it was when the package imported everything at once)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _MODULE_OF and isinstance(value, types.ModuleType) and value.__name__ == f"{__name__}.{name}":
            return  # the submodule stays reachable as sys.modules["pointapp.<name>"] and by import
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
for _shadow in [name for name in ("plan", "audit") if isinstance(globals().get(name), types.ModuleType)]:
    del globals()[_shadow]  # a submodule imported before the line above set its name here: the function wins

# The step list sets the hooks lower layers ask it through (pointapp.names.built_names_from,
# pointapp.target.discover_outputs_with), whatever a user imports first.
importlib.import_module("pointapp.steps")
# In a notebook, an expected error (a PointappError) shows as its one line, as the CLI prints it.
importlib.import_module("pointapp.jupyter").show_errors_in_one_line()
