"""The exception hierarchy of pointapp.

Every error a person can act on is a :class:`PointappError`. The CLI prints ``str(error)`` as one line
and exits non-zero; ``--debug`` adds the traceback.
"""

from __future__ import annotations


class PointappError(Exception):
    """Base class: one line that names the problem and, where possible, what is allowed."""

    exit_code = 1


class SpecError(PointappError):
    """The specification (defaults, YAML overrides or parameters) is invalid."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class TargetError(PointappError):
    """The target cannot be used: credentials, endpoint, region or confirmation."""


class StepError(PointappError):
    """A step failed while talking to AWS; carries the step, the resource and the AWS error code."""

    def __init__(self, step: str, resource: str, message: str, code: str | None = None) -> None:
        self.step = step
        self.resource = resource
        self.code = code
        detail = f" ({code})" if code else ""
        super().__init__(f"step {step}: {resource}: {message}{detail}")


class DependencyError(PointappError):
    """A selected step needs another that is not ready (not built, partly built or drifted) and is not
    selected with it: nothing was changed. Carries the step, the steps it waits for, and the notebook to run."""

    def __init__(self, step: str, missing: list[str], notebook: str, message: str) -> None:
        self.step = step
        self.missing = missing
        self.notebook = notebook
        super().__init__(message)


class ConfirmationRequired(TargetError):
    """A change to real AWS was not confirmed."""
