import sys

from skill_engine.cli import main

sys.exit(main())
