import sys

from venvkeeper.cli import main

sys.exit(main())
