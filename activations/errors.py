"""The project's one input-error type: the command line prints it as one line and exits 2."""


class InputError(ValueError):
    """A bad value given by the user (a name, a spec, a number, a path); the message says what is valid."""
