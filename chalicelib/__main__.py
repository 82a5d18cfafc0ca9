"""`python -m chalicelib`: see chalicelib/cli.py."""

from chalicelib.cli import main

if __name__ == "__main__":  # replay's worker processes import this module again under another name
    main()
