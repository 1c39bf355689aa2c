import sys

from pointapp.cli import main

sys.exit(main())
