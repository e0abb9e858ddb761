"""Reading Prometheus exposition text in tests."""

import requests
from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text_or_samples, name: str, **labels) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 if none)."""
    found = samples(text_or_samples) if isinstance(text_or_samples, str) else text_or_samples
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= ls)


def scrape(url: str) -> str:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text[:500]
    return response.text
