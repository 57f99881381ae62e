"""The ``webhook`` source: submissions that forms and CRMs post to ``convsync run``'s
webhook server (``service/webhooks/``), kept in the ledger until a run reads them."""
