"""The status page of ``convsync run``: ``GET /`` on the health port.

``data`` reads what the page shows from the ledger (the same health as ``/healthz``, the
funnel as ``convsync report``), ``charts`` draws it as inline SVG, ``render`` fills the
template in Russian or English, ``access`` decides who may read it, and ``endpoint``
serves it beside ``/healthz`` and ``/metrics`` with waitress and Werkzeug.
"""
