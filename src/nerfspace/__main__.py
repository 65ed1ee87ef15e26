from nerfspace.cli import entry

entry()
