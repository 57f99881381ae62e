"""HubSpot: closed-won deals pulled incrementally through the CRM search API."""
