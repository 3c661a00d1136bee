"""``python -m aliasip_lab.apiserver --listen ADDR:PORT``: same as ``aliasip-lab apiserver``."""

import sys

from aliasip_lab.apiserver.runner import main

sys.exit(main())
