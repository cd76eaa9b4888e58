"""``python -m fastlstm.bench``: see fastlstm.bench."""
import sys

from . import exec_with_quiet_openblas, main

exec_with_quiet_openblas()
sys.exit(main())
