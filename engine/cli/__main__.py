"""``python -m engine.cli VERB ...``"""

import sys

from . import main

sys.exit(main())
