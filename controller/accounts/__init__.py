"""Staff accounts: sign-in and tokens (auth), users, zone scope, and the audit chain with its log view."""
