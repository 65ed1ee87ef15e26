"""Error types. The CLI prints any `NerfspaceError` as one line naming the file and the reason;
`InputError` and its subclasses exit 2, others 1.

Every failure caused by what the user handed in is an `InputError`; the subclasses name its family:

=====================  =========================================================================
`FileFormatError`      missing, zero-byte, truncated or corrupted file; not the expected format;
                       bad metadata; a missing or malformed occupancy grid
`SpecError`            an ArchSpec that is malformed or unknown (unknown family, bad sizes)
`SpecMismatchError`    tensors that do not fit their spec: missing, unexpected, wrong shape or dtype
`NonFiniteError`       NaN or Inf values
`ZooError`             an inconsistent zoo: duplicate object ids or files, mixed scales, other settings
`AccessError`          a file or folder that cannot be read or written (permissions)
`UnsafeFileError`      a pickle that holds more than tensors: refused, never executed
=====================  =========================================================================
"""


class NerfspaceError(Exception):
    """Base of every error nerfspace raises on purpose."""


class InputError(NerfspaceError):
    """Bad user input: an unknown name, a malformed or truncated file, an invalid argument."""


class FileFormatError(InputError):
    """A file that cannot be read as the format it should have (truncated, corrupted, wrong format)."""


class SpecError(InputError):
    """An ArchSpec that is malformed or unknown."""


class SpecMismatchError(InputError):
    """Tensors that do not fit their ArchSpec (names, shapes, dtypes)."""


class NonFiniteError(InputError):
    """Tensors holding NaN or Inf values."""


class ZooError(InputError):
    """A zoo whose manifest or files disagree (duplicates, mixed scales, other settings)."""


class AccessError(InputError):
    """A file or folder that the operating system does not let us read or write."""


class UnsafeFileError(InputError):
    """A pickle that holds more than tensors and plain containers: refused, never executed."""


def access_error(e: OSError) -> AccessError:
    """An `AccessError` naming the file of a `PermissionError`."""
    return AccessError(f"{e.filename or 'file'}: permission denied ({e.strerror or e})")
