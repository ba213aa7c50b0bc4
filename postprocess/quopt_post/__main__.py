"""`python -m quopt_post <command> ...`"""

import sys

from .cli import main

sys.exit(main())
