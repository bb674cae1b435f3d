"""``python -m controller.cameras.onvif HOST [PORT] --username U`` (see :func:`controller.cameras.onvif.cli.main`)."""

from controller.cameras.onvif.cli import main

raise SystemExit(main())
