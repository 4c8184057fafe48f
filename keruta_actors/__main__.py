import sys

from keruta_actors.cli import main

sys.exit(main())
