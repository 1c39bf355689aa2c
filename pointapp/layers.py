"""The layers of pointapp, lowest first. A module imports modules of its own layer and of lower ones only
(tests/test_layers.py reads every module's imports and fails on one that reaches up).

1. spec: ``errors``, ``plan``, ``diffs``, ``sessions``, ``spec``, ``names``, ``typical``, ``layers``,
   ``baseline`` - the validated spec, plans
   and changes as plain data, AWS's name rules and the names several steps share, how long things
   usually take on AWS.
2. run: ``concurrency``, ``emulator``, ``shared_emulator``, ``clients``, ``run``, ``context``, ``target``,
   ``outputs`` - work side by side, the emulators, where pointapp works and one run's context, made of small parts (clients and the call
   log, progress, the record, deferred work, the outputs steps hand to one another, and their keys).
3. core: ``tags``, ``resources``, ``kinds``, ``taskdef``, ``artifacts`` - the ownership tags, the
   Desired/Kind/ResourceStep core, the kinds several steps use, and the pure builders steps and exports
   share (the task definition, the release files).
4. steps: ``steps`` (the step list) and each step module. A step does not import another step: it reads
   the other's outputs (``ctx.outputs(step)``), and what they share lives in a lower layer.
5. engine: ``engine``, ``schedule`` - plan, apply and destroy over the step list; the only writer of outputs.
6. tools: ``audit``, ``diagram``, ``cloudformation``, ``release``, ``facts`` - what is built on the engine and the steps.
7. front: ``runbook``, ``translate``, ``cli``, ``jupyter``, the package itself (``pointapp``, ``__main__``) - what
   people call (``translate`` writes the Japanese notebooks the runbook can run).
"""

from __future__ import annotations

#: The layers, lowest first, and the modules of each (``steps`` stands for the package and every step module).
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("spec", frozenset({"errors", "plan", "diffs", "sessions", "spec", "names", "typical", "layers", "baseline"})),
    ("run", frozenset({"concurrency", "emulator", "shared_emulator", "clients", "run", "context", "target", "outputs"})),
    ("core", frozenset({"tags", "resources", "kinds", "taskdef", "artifacts"})),
    ("steps", frozenset({"steps"})),
    ("engine", frozenset({"engine", "schedule"})),
    ("tools", frozenset({"audit", "diagram", "cloudformation", "release", "facts"})),
    ("front", frozenset({"runbook", "translate", "cli", "jupyter", "", "__main__"})),
)


def layer_of(module: str) -> int:
    """The layer (its index in :data:`LAYERS`) of ``module``, a dotted name in the ``pointapp`` package."""
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else ""
    for index, (_, modules) in enumerate(LAYERS):
        if name in modules:
            return index
    raise KeyError(f"module {module} is in no layer of pointapp.layers.LAYERS: add it to one")
