import sys

from handler.local.cli import main

sys.exit(main())
