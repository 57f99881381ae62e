"""The ``metrica_logs`` source: goals reached in Yandex.Metrica visits, via the Logs API."""
