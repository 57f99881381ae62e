"""Bitrix24: won deals pulled incrementally through the REST API."""
