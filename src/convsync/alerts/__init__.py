"""Anomaly alerts: the ``alerts:`` config section (:mod:`convsync.alerts.config`) and
the channels they are sent through (:mod:`convsync.alerts.channels`).

Kept empty: ``convsync.config`` imports the config models, and loading a config must not
pull in the channels' transports (``requests``, ``smtplib``).
"""
