"""Company Stats: tumbling windows per series, aggregated exactly and independently of arrival order (pure)."""
