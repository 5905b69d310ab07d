"""What the Prometheus-facing tests share."""

from tradingapp import metrics


def declared_series() -> set[str]:
    """Every series name tradingapp/metrics.py makes Prometheus see."""
    names = set()
    for metric in metrics._REAL.values():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(metric._type, [""])
        names |= {metric._name + suffix for suffix in suffixes}
    return names
