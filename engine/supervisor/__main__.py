"""``python -m engine.supervisor [--daemon]``: see :func:`engine.supervisor.daemon.main`."""

from .daemon import main

main()
