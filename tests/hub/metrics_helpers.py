"""Reading Prometheus exposition in tests."""

from prometheus_client.parser import text_string_to_metric_families

TOKEN = "metrics-test-token-0123456789"


def sample(exposition: str, name: str, **labels: str) -> float:
    """The value of one sample (0 when absent, as a counter not yet incremented)."""
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0
