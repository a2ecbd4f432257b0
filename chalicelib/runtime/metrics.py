"""CloudWatch metrics of each committed turn, as Powertools EMF lines (one JSON line on stdout).

Dimensions: `service` only, so the namespace holds a fixed set of metrics (the names below) however
many tenants, agents and channels there are. A tenant or agent dimension would make one custom
metric per value, billed and listed one by one, growing with every tenant; per-tenant numbers come
exact from GET /v1/usage instead. tenant_id, agent_id, channel and turn_id travel as EMF metadata
(properties of the log line, not dimensions): Logs Insights can still slice by them.
POWERTOOLS_METRICS_DISABLED=true stops the lines (tests and local runs may leave them on).
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.exceptions import MetricUnitError, MetricValueError, SchemaValidationError

from chalicelib.domain.turn import TurnRecord
from chalicelib.runtime.log import logger

NAMESPACE = "Ruche"
SERVICE = "ruche"
# The metric names: infra/template.yaml's dashboard and alarms read them.
TURN_METRICS = ("Turns", "TurnLatency", "LlmCalls", "PromptTokens", "CompletionTokens", "Fallbacks",
                "Regenerations", "Violations")


def publish_turn(record: TurnRecord, latency_ms: float) -> None:
    """Emit the turn's metrics. Never raises into the turn: it is already committed."""
    metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    values = {
        "Turns": (1, MetricUnit.Count),
        "TurnLatency": (round(latency_ms, 1), MetricUnit.Milliseconds),
        "LlmCalls": (record.llm_calls, MetricUnit.Count),
        "PromptTokens": (record.prompt_tokens, MetricUnit.Count),
        "CompletionTokens": (record.completion_tokens, MetricUnit.Count),
        "Fallbacks": (int(record.outcome.fallback_used), MetricUnit.Count),
        "Regenerations": (record.outcome.regeneration_attempts, MetricUnit.Count),
        "Violations": (sum(len(attempt.violations) for attempt in record.attempts), MetricUnit.Count),
    }
    try:
        for name, (value, unit) in values.items():
            metrics.add_metric(name=name, unit=unit, value=value)
        for key in ("tenant_id", "agent_id", "channel", "turn_id"):
            metrics.add_metadata(key=key, value=getattr(record, key))
        metrics.flush_metrics()
    except (MetricValueError, MetricUnitError, SchemaValidationError) as exc:
        logger.warning("turn metrics not published", extra={"error": type(exc).__name__})
