"""``python -m aliasip_nodeagent`` is ``aliasip-agent``."""

import sys

from aliasip_nodeagent.cli import main

sys.exit(main())
