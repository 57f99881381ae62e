"""A fake HubSpot CRM API on 127.0.0.1: deal search (filters, sort, ``after`` paging, the
10,000-result cap), deal→contact associations, contact batch read, deal pipelines,
injected 429/5xx answers and the time of every request."""

from .server import FakeHubSpot, fake_hubspot
from .state import Fault, HubSpotState, Seen

__all__ = ["FakeHubSpot", "Fault", "HubSpotState", "Seen", "fake_hubspot"]
