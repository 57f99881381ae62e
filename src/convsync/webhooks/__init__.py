"""Inbound webhooks: target actions pushed by sites, forms and CRMs as they happen."""
