"""Tools run by hand or by the tests, never imported by the running controller: the one-machine stack
(local_stack), the demo, the installer and the audit-chain command."""
