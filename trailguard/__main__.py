"""`python -m trailguard`: see trailguard/cli.py."""

from trailguard.cli import main

if __name__ == "__main__":  # replay's worker processes import this module again under another name
    main()
