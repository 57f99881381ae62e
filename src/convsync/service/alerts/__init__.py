"""Anomaly alerts: the rules (:mod:`.rules`) judged on facts from the ledger
(:mod:`.facts`) after each run, and the channels they are sent through
(:mod:`.channels`); their config section is :mod:`convsync.config.alerts`."""
