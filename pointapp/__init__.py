"""pointapp: stand up the production environment of a containerized web service on AWS, step by step.

The public API, used by the CLI and the notebooks::

    import pointapp
    with pointapp.connect(env="prod") as ctx:      # the embedded emulator unless told otherwise
        planned = pointapp.plan(ctx, only="network")
        print(planned)
        pointapp.apply(ctx, planned)
"""

from pointapp.audit import audit
from pointapp.emulator import Emulator
from pointapp.engine import apply, discover, down, finish_destroy, inventory, plan, plan_destroy, status, up
from pointapp.errors import ConfirmationRequired, PointappError, SpecError, StepError, TargetError
from pointapp.plan import Change, Outcome, Plan, Table
from pointapp.spec import Spec, load_spec
from pointapp.steps import STEP_NAMES, STEPS, steps_table
from pointapp.target import Context, Target, connect, resolve_target

__version__ = "0.1.0"

__all__ = [
    "STEPS",
    "STEP_NAMES",
    "Change",
    "ConfirmationRequired",
    "Context",
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
