"""Inbound webhooks: the server that receives what sites, forms and CRMs post as it
happens, and records it (the ``webhook`` source itself is :mod:`convsync.sources.webhook`)."""
