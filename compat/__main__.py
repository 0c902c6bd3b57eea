import sys

from compat.harness import main

sys.exit(main())
