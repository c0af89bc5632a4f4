"""`python -m cloud_init render ...` in a checkout, `python -m hardened_do.cloud_init render ...` once installed."""

import sys

# Absolute: in a checkout this file also runs as the top-level `cloud_init`
# package, and the code it starts must load under its one name.
from hardened_do.cloud_init.cli import main

sys.exit(main())
