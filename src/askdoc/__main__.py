"""``python -m askdoc``."""

from askdoc.cli import main

raise SystemExit(main())
