"""amoCRM / Kommo: won leads pulled incrementally through API v4."""
