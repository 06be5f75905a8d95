import sys

from lateint.cli.main import main

sys.exit(main())
