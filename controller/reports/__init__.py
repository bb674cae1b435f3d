"""Reports a ward sends upward and the city reads: monthly figures per ward, the city's roll-up, and
every ward at a glance."""
