"""Images made here: ``build`` (a Dockerfile and a context) and ``commit``
(a container's writable layer).

Where each part lives:

- :mod:`.builder` -- :func:`build`: the Dockerfile and context read, the
  stages the target needs built, the image stored and tagged, everything
  temporary removed;
- :mod:`.steps` -- one stage, instruction by instruction, the build cache
  asked before each step; :mod:`.metadata` -- the instructions that change
  the config only (ENV, CMD, LABEL ...), shared with ``commit --change``;
- :mod:`.dockerfile` -- the parser (directives, continuations, flags,
  stages); :mod:`.words` -- variable expansion and quotes;
- :mod:`.context` and :mod:`.ignore` -- the build context and ``.dockerignore``;
- :mod:`.copying` -- what COPY and ADD put where; :mod:`.view` -- an image's
  files read from its layers without mounting them;
- :mod:`.pack` -- a layer tar written (a container's upperdir as a diff:
  whiteouts, opaque directories); :mod:`.runner` -- a RUN's container;
- :mod:`.cache` -- the build cache; :mod:`.state` -- an image between
  steps, and how it goes into the store;
- :mod:`.commit` -- :func:`commit`; :mod:`.progress` -- BuildKit-style output.

Nothing here adds to the store but through :meth:`ImageStore.add_image`,
so every layer built is checked and unpacked as a pulled one is.
"""

from .builder import Options, Result, build, parse_build_args
from .commit import Committed, commit

__all__ = ["Committed", "Options", "Result", "build", "commit", "parse_build_args"]
