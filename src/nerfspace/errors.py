"""Error types. The CLI prints any `NerfspaceError` as one line; `InputError` exits 2, others 1."""


class NerfspaceError(Exception):
    """Base of every error nerfspace raises on purpose."""


class InputError(NerfspaceError):
    """Bad user input: an unknown name, a malformed or truncated file, an invalid argument."""
