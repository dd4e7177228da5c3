import sys

from netteach.cli import main

sys.exit(main())
