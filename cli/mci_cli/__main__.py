"""``python -m mci_cli``: the same as the ``mci`` console script."""

from mci_cli.main import run

run()
