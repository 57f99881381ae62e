"""Reading ``/metrics`` as Prometheus does: over HTTP, parsed by the client library."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Scrape:
    text: str
    content_type: str
    #: sample name → its series (labels → value)
    samples: dict[str, dict[Labels, float]]

    def value(self, name: str, **labels: str) -> float | None:
        """The sample ``name`` with exactly these labels (None: not exposed)."""
        return self.samples.get(name, {}).get(frozenset(labels.items()))

    def count(self, name: str, **labels: str) -> float:
        """A counter's value, 0 for a series not exposed yet."""
        return self.value(name, **labels) or 0.0

    def series(self, name: str) -> dict[tuple[str, ...], float]:
        """The label values of each series of ``name`` (in label-name order) → value."""
        return {
            tuple(value for _, value in sorted(labels)): sample
            for labels, sample in self.samples.get(name, {}).items()
        }

    def label_names(self) -> set[str]:
        return {name for series in self.samples.values() for labels in series for name, _ in labels}


def scrape(port: int, accept: str | None = None) -> Scrape:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if accept is not None:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
        content_type = response.headers["Content-Type"]
    samples: dict[str, dict[Labels, float]] = {}
    if content_type.startswith("text/plain"):
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return Scrape(text, content_type, samples)
