"""Errors a user can act on. Each carries a message meant to be shown as is."""


class StudioError(Exception):
    """Base class: anything the UI, API and CLI show to the user verbatim."""


class RequestError(StudioError, ValueError):
    """A request field is invalid. `field` names the input that caused it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class ModelNotAvailable(StudioError):
    """The weights of a checkpoint are not on disk and cannot be downloaded now."""


class UnknownModel(StudioError, KeyError):
    def __str__(self):  # KeyError would wrap the message in quotes
        return self.args[0]


class Cancelled(StudioError):
    """The user stopped the job; nothing was written."""


class WindowsKept(Cancelled):
    """The user stopped a long job after its first `kept` windows of `count` were made: those are kept,
    and running the same job again (Resume) goes on from the next."""

    def __init__(self, kept: int, count: int):
        self.kept, self.count = kept, count
        made = "the window made is" if kept == 1 else f"the {kept} windows made are"
        super().__init__(f"Stopped after window {kept} of {count}; {made} kept, and Resume goes on from window "
                         f"{kept + 1}.")


class Paused(StudioError):
    """A long job stopped on purpose after its window budget (ZeroGPU: one reservation a window);
    its finished windows are kept and it goes back to the head of the queue to continue."""
