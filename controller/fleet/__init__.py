"""The fleet of agents: what they report (recorder, inbox, play guard), how they join (provisioning,
enrolment, broker accounts) and what is asked of them (remote ops, device operations)."""
