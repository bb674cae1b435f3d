"""The SOAP stack (onvif-zeep-async and zeep), imported without the side effects it has on our logging.

Every module of this package that needs the library imports it from here, so the guard below runs
before anything else reaches ``onvif``.
"""

from __future__ import annotations

import logging

# onvif.client calls logging.basicConfig() at import time, which would give the controller's root
# logger a handler and INFO level behind its back. basicConfig() does nothing when the root already has a
# handler, so a throwaway one is held there for the duration of the import.
_root_logger = logging.getLogger()
_import_guard = logging.NullHandler() if not _root_logger.handlers else None
if _import_guard is not None:
    _root_logger.addHandler(_import_guard)
try:
    import zeep.exceptions as zeep_errors
    from onvif import ONVIFCamera
    from onvif.exceptions import ONVIFError
finally:
    if _import_guard is not None:
        _root_logger.removeHandler(_import_guard)

# zeep's transports log every request envelope at DEBUG, WS-Security header (username, password digest,
# nonce) included; a controller running at DEBUG must still not write those.
for _chatty in ("zeep.transports", "onvif.zeep_aiohttp"):
    logging.getLogger(_chatty).setLevel(logging.INFO)

__all__ = ["ONVIFCamera", "ONVIFError", "zeep_errors"]
