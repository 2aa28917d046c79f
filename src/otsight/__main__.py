"""``python -m otsight`` runs the command line."""

from otsight.cli import main

main()
