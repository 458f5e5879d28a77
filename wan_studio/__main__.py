import sys

from wan_studio.cli import main

sys.exit(main())
