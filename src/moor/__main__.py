"""`python -m moor`."""

from moor.cli.main import main

main()
