"""The root of Moor's exceptions: every error a user can cause is a MoorError with one clear sentence."""


class MoorError(Exception):
    """An error whose message is fit to show a user as it is: it names the object and the cause."""
