"""Shared by the tests: running the command line in-process."""

from __future__ import annotations

from nerfspace.cli import main


def run(capsys, *argv) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``nerfspace ARGV...``."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(capsys, *argv) -> str:
    """stderr of a command that must fail on its input: exit 2, one `error:` line under 300 characters."""
    code, _, err = run(capsys, *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.strip().startswith("error:"), err
    assert "Traceback" not in err and len(err) < 300
    return err
