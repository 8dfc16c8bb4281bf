"""``python -m convergent``: the command line."""

from convergent.cli import main

main()
