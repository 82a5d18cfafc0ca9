"""`python -m chalicelib`: see chalicelib/cli.py."""

from chalicelib.cli import main

main()
