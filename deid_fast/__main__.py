"""`python -m deid_fast` is the `deid-fast` command."""
import sys

from deid_fast.console import main

sys.exit(main())
